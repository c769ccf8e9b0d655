"""Rebuild the index from the two places that outlive it: Temporal and the artifact store.

The app's database is only an index (DESIGN.md): Temporal is the source of truth for
what a run did, and every stored checkpoint directory holds its round's summary
(`rlsched-round.json`, written by `store_checkpoint`). So when the database file is lost
(or restored from an old backup), the app finds its runs again on start:

1. Temporal visibility: every `TrainingLoopWorkflow` execution on our training queue
   whose id is ours (`training-run-<run id>`). A run missing from the index gets a row built from the
   workflow's input (the run's config); `refresh_run` then fills in status, rounds and
   checkpoints from the query or result, as it does for any live run.
2. The artifact store: round summaries under `<checkpoint root>/<run id>/round-*/`. Rounds
   the workflow no longer carries (retention expired, or a failed run without a result)
   are indexed from them; a run known only from its checkpoints is recorded as failed
   with the reason, the same status a run whose workflow vanished gets.

Both steps only add what is missing; rows already in the index are left alone, so this
is safe on every start.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from app.core.config import Settings
from app.db import insert_row
from app.models import Checkpoint, Round, Run, TrainingRunCreate, utcnow
from app.services.checkpoints import copy_round_scores, record_checkpoint
from app.services.runs import refresh_run, workflow_id_for
from app.services.temporal import TemporalGateway
from worker.contracts import TRAINING_LOOP_WORKFLOW, RoundSummary, TrainingRunConfig

log = logging.getLogger(__name__)

WORKFLOW_ID_PREFIX = workflow_id_for("")
ROUND_SUMMARY_FILE = "rlsched-round.json"
CHECKPOINT_METADATA_FILE = "rlsched.json"
"""Written next to each stored checkpoint by the worker's `store_checkpoint`."""
WORKFLOW_GONE = "the workflow no longer exists on Temporal (retention expired?)"


@dataclass
class RediscoveryReport:
    """What one pass added to the index (logged on start, returned for tests)."""

    runs_from_temporal: list[str] = field(default_factory=list)
    runs_from_artifacts: list[str] = field(default_factory=list)
    rounds_from_artifacts: int = 0


async def rediscover(engine: Engine, temporal: TemporalGateway, settings: Settings) -> RediscoveryReport:
    """One pass over Temporal then the artifact store. Raises when Temporal cannot be
    listed (the caller retries); the artifact store is read only after Temporal answered,
    so a run still on Temporal is never mistaken for a lost one."""
    report = RediscoveryReport()
    client = await temporal.client()
    session = Session(engine, expire_on_commit=False)
    try:
        for run_id, started in (await _training_workflows(client, settings.training_queue)).items():
            if await run_in_threadpool(session.get, Run, run_id) is not None:
                continue
            config = await _workflow_input(client, workflow_id_for(run_id))
            run = _run_row(run_id, config, started)
            if not await run_in_threadpool(insert_row, session, run):
                continue  # a request or a second app instance recorded it first
            report.runs_from_temporal.append(run_id)
            await refresh_run(session, temporal, settings, run)
        root = artifact_root(settings)
        if root is not None:
            await run_in_threadpool(index_round_summaries, session, root, report)
    finally:
        await run_in_threadpool(session.close)
    if report.runs_from_temporal or report.runs_from_artifacts or report.rounds_from_artifacts:
        log.info(
            "rediscovered %d runs from Temporal, %d runs and %d rounds from %s",
            len(report.runs_from_temporal),
            len(report.runs_from_artifacts),
            report.rounds_from_artifacts,
            artifact_root(settings),
        )
    return report


async def _training_workflows(client: Client, task_queue: str) -> dict[str, datetime]:
    """Run id -> when its first execution started. A run that continued as new has one
    execution per chain link, all with the same workflow id. Only our task queue: apps
    sharing a Temporal namespace with another queue prefix keep their runs apart."""
    runs: dict[str, datetime] = {}
    query = f"WorkflowType = '{TRAINING_LOOP_WORKFLOW}' AND TaskQueue = '{task_queue}'"
    async for execution in client.list_workflows(query):
        if not execution.id.startswith(WORKFLOW_ID_PREFIX):
            continue  # started by something other than this API (a test, a script)
        run_id = execution.id.removeprefix(WORKFLOW_ID_PREFIX)
        started = execution.start_time
        if run_id not in runs or started < runs[run_id]:
            runs[run_id] = started
    return runs


async def _workflow_input(client: Client, workflow_id: str) -> TrainingRunConfig | None:
    """The run's config, from the first event of the workflow's (latest) history."""
    handle = client.get_workflow_handle(workflow_id)
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        if not payloads:
            return None
        try:
            [config] = await client.data_converter.decode(list(payloads), [TrainingRunConfig])
        except (ValueError, TypeError, ValidationError) as error:
            log.warning("workflow %s has an input this app cannot read: %s", workflow_id, error)
            return None
        return config
    return None


def _run_row(run_id: str, config: TrainingRunConfig | None, started: datetime) -> Run:
    """A row as `create_run` would have written it, minus what only the request knew
    (Idempotency-Key, deploy settings, the checkpoint id a run resumed from)."""
    body: dict = {}
    if config is not None:
        values = config.model_dump(mode="json")
        body = {k: values[k] for k in TrainingRunCreate.model_fields if k in values}
        with contextlib.suppress(ValidationError):  # another contract version: keep it as is
            body = TrainingRunCreate.model_validate(body).model_dump(mode="json")
    return Run(
        id=run_id,
        name=config.name if config is not None else None,
        workflow_id=workflow_id_for(run_id),
        status="running",  # refresh_run reads the real status from the workflow
        config=body,
        created_at=started.astimezone(UTC),
    )


def artifact_root(settings: Settings) -> Path | None:
    """The worker's local checkpoint root (RLSCHED_ARTIFACT_STORE or <data dir>/checkpoints).
    A remote store (s3://...) is not scanned: its summaries are reached through Temporal."""
    store = settings.artifact_store
    if store and "://" in store:
        return None
    root = Path(store) if store else settings.data_dir / "checkpoints"
    return root.resolve() if root.is_dir() else None


def index_round_summaries(session: Session, root: Path, report: RediscoveryReport | None = None) -> int:
    """Index every round summary under `root/<run id>/round-*/` that the index lacks;
    returns how many rounds were added."""
    report = report or RediscoveryReport()
    added = 0
    for path in sorted(root.glob(f"*/round-*/**/{ROUND_SUMMARY_FILE}")):
        run_id = path.relative_to(root).parts[0]
        try:
            summary = RoundSummary.model_validate_json(path.read_text())
        except (OSError, ValueError) as error:
            log.warning("skipping unreadable round summary %s: %s", path, error)
            continue
        if session.exec(select(Round).where(Round.run_id == run_id, Round.round == summary.round)).first():
            continue
        run = session.get(Run, run_id)
        if run is None:
            run = Run(
                id=run_id,
                workflow_id=workflow_id_for(run_id),
                status="failed",
                config={},
                error=f"{WORKFLOW_GONE}; rediscovered from its checkpoints in {root / run_id}",
                created_at=summary.finished_at or utcnow(),
                finished_at=summary.finished_at,
            )
            session.add(run)
            session.flush()  # before its checkpoint, which refers to it
            report.runs_from_artifacts.append(run_id)
        summary.checkpoint = str(path.parent)
        ckpt = record_checkpoint(session, run, summary)
        ckpt.window = _trained_window(path.parent) or ckpt.window
        row = Round(run_id=run_id, round=summary.round, checkpoint_id=ckpt.id)
        copy_round_scores(row, summary)
        row.episode_return_mean = summary.episode_return_mean
        row.finished_at = summary.finished_at
        run.rounds_done = max(run.rounds_done, summary.round)
        _keep_best(session, run, ckpt)
        session.add_all([run, row])
        try:
            session.commit()
        except IntegrityError as error:  # another writer indexed it meanwhile
            log.debug("round %d of %s already indexed: %s", summary.round, run_id, error)
            session.rollback()
            continue
        added += 1
    report.rounds_from_artifacts += added
    return added


def _trained_window(checkpoint: Path) -> int | None:
    """The job window the policy was trained with, from the worker's own metadata file in
    the checkpoint (worker/rl/train.py METADATA_FILE): a run known only from its
    checkpoints has no config to read it from, and inference needs it."""
    try:
        window = json.loads((checkpoint / CHECKPOINT_METADATA_FILE).read_text()).get("window")
    except (OSError, ValueError):
        return None
    return window if isinstance(window, int) and window > 0 else None


def _keep_best(session: Session, run: Run, ckpt: Checkpoint) -> None:
    if run.best_score is None or (ckpt.score is not None and ckpt.score > run.best_score):
        run.best_score, run.best_checkpoint_id = ckpt.score, ckpt.id
    latest = session.get(Checkpoint, run.latest_checkpoint_id) if run.latest_checkpoint_id else None
    if latest is None or latest.round < ckpt.round:
        run.latest_checkpoint_id = ckpt.id
