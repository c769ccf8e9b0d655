"""What a run's Temporal history says happened: every check of "exactly once" reads it."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TypeVar

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from worker.contracts import TrainingProgress
from worker.main import connect

Beat = TypeVar("Beat", bound=BaseModel)


async def _scheduled(address: str, workflow_id: str) -> tuple[Counter[str], TrainingProgress]:
    client = await connect(address=address)
    handle = client.get_workflow_handle(workflow_id, result_type=TrainingProgress)
    result = await handle.result()
    counts: Counter[str] = Counter()
    # Every run of a continue-as-new chain: the first execution's id follows them all.
    description = await handle.describe()
    run_id: str | None = description.run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        counts.update(
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        )
        first = history.events[0].workflow_execution_started_event_attributes
        run_id = first.continued_execution_run_id or None
    return counts, result


def scheduled_activities(address: str, workflow_id: str) -> tuple[Counter[str], TrainingProgress]:
    """(activity type -> times scheduled over the whole chain, the workflow's result)."""
    return asyncio.run(_scheduled(address, workflow_id))


async def _started(address: str, workflow_id: str, activity_type: str) -> list[tuple[str, int]]:
    client = await connect(address=address)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    return [
        (e.activity_task_started_event_attributes.identity, e.activity_task_started_event_attributes.attempt)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and scheduled[e.activity_task_started_event_attributes.scheduled_event_id] == activity_type
    ]


def started_activities(address: str, workflow_id: str, activity_type: str) -> list[tuple[str, int]]:
    """(worker identity `pid@host`, attempt) of each `activity_type` the workflow's run
    started. Temporal records a retried activity's start once, with the attempt that
    finished it, so this names the worker that completed it."""
    return asyncio.run(_started(address, workflow_id, activity_type))


async def pending_heartbeat(
    client: Client, handle: WorkflowHandle, activity_type: str, beat: type[Beat]
) -> tuple[Beat, str] | None:
    """A pending activity's last heartbeat and the identity (pid@host) of its worker."""
    description = await handle.describe()
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name == activity_type and pending.heartbeat_details.payloads:
            [details] = await client.data_converter.decode(pending.heartbeat_details.payloads)
            return beat.model_validate(details), pending.last_worker_identity
    return None
