"""Training schedules on Temporal: their ids, the memo keys their runs carry, and the run
id a fired run derives from its workflow id."""

from __future__ import annotations

import hashlib
import re

TRAINING_SCHEDULE_PREFIX = "training-schedule-"
"""Id of a training schedule on Temporal (`training-schedule-<id>`), which is also the
workflow id of its action: Temporal starts each fired run as `<that id>-<RFC 3339 time>`."""
SCHEDULE_RUN_MEMO = "rlsched_run"
"""Memo key, on a schedule's action and so on every run it fires, holding the run's
POST /training-runs body: the app indexes a fired run from it like a run it started."""
SCHEDULE_ID_MEMO = "rlsched_schedule_id"
"""Memo key with the app's schedule id, next to SCHEDULE_RUN_MEMO."""
_SCHEDULED_WORKFLOW_ID = re.compile(
    re.escape(TRAINING_SCHEDULE_PREFIX)
    + r"(?P<schedule>[A-Za-z0-9]+)-(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"
)


def training_schedule_id(schedule_id: str) -> str:
    return f"{TRAINING_SCHEDULE_PREFIX}{schedule_id}"


def scheduled_run_id(workflow_id: str) -> str:
    """The run id of a run a schedule fired, derived from its workflow id alone, so the
    workflow (TrainingRunConfig.run_id empty) and the app's reconciler agree on it without
    talking: `training-schedule-abc-2026-11-24T03:00:00Z` -> `abc-20261124T030000Z`. Any
    other workflow id (started by hand with an empty run id) gets a hash of it."""
    match = _SCHEDULED_WORKFLOW_ID.fullmatch(workflow_id)
    if match is not None:
        return f"{match['schedule']}-{match['at'].replace('-', '').replace(':', '')}"
    return hashlib.sha256(workflow_id.encode()).hexdigest()[:12]
