"""SchedulerServiceWorkflow on a real dev server and the real inference worker: concurrent
plan updates, the validator, continue-as-new under load, and replay of its histories."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from support.workers import fresh_prefix, queues, running_workers
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Replayer
from test_scheduler_workflow import cluster_request

from worker.activities.inference import plan_schedule
from worker.codec import DATA_CONVERTER
from worker.contracts import (
    SCHEDULER_RESTARTING,
    PlanInput,
    PlanOutput,
    PolicyRef,
    SchedulerServiceInput,
)
from worker.workflows.scheduler_service import SchedulerServiceWorkflow

pytestmark = pytest.mark.integration

POLICIES = ("sjf", "edf", "fifo", "packing")


async def start_service(client: Client, prefix: str, every: int = 200) -> WorkflowHandle:
    return await client.start_workflow(
        SchedulerServiceWorkflow.run,
        SchedulerServiceInput(continue_as_new_every=every),
        id=f"scheduler-service-{uuid.uuid4().hex[:8]}",
        task_queue=queues(prefix)[1],
    )


async def plan(handle: WorkflowHandle, request: PlanInput) -> PlanOutput:
    """As the API sends a plan: again while the workflow continues as new."""
    for _ in range(200):
        try:
            return await handle.execute_update(SchedulerServiceWorkflow.plan, request)
        except WorkflowUpdateFailedError as error:
            cause = error.__cause__
            if not (isinstance(cause, ApplicationError) and cause.type == SCHEDULER_RESTARTING):
                raise
        except RPCError as error:
            if "closing" not in error.message:
                raise
        await asyncio.sleep(0.01)
    raise AssertionError("the service never took the plan")


def test_concurrent_plans_and_the_validator(temporal_address: str, data_dir: object) -> None:
    async def body() -> None:
        prefix = fresh_prefix()
        async with running_workers(temporal_address, prefix, "inference") as client:
            handle = await start_service(client, prefix)
            requests = [
                cluster_request(PolicyRef(kind="heuristic", name=p), jobs=40 + i)
                for i, p in enumerate(POLICIES * 3)
            ]
            answers = await asyncio.gather(*(plan(handle, r) for r in requests))
            for request, answer in zip(requests, answers, strict=True):
                expected = plan_schedule(request)
                assert answer.policy == request.policy.name
                assert answer.placements == expected.placements and answer.unplaced == expected.unplaced
                assert len(answer.placements) + len(answer.unplaced) == len(request.jobs or [])

            bad = cluster_request(PolicyRef(kind="heuristic", name="sjf")).model_copy(
                update={"baseline": "nope"}
            )
            with pytest.raises(WorkflowUpdateFailedError) as failed:
                await handle.execute_update(SchedulerServiceWorkflow.plan, bad)
            cause = failed.value.__cause__
            assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput"
            assert "unknown baseline 'nope'" in cause.message
            unknown = cluster_request(PolicyRef(kind="heuristic", name="best-guess"))
            with pytest.raises(WorkflowUpdateFailedError) as failed:
                await handle.execute_update(SchedulerServiceWorkflow.plan, unknown)
            assert "unknown heuristic 'best-guess'" in str(failed.value.__cause__)

            events = [e async for e in handle.fetch_history_events()]
            accepted = [
                e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
            ]
            assert len(accepted) == len(requests), "a rejected plan reached history"
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            assert (await plan(handle, requests[0])).placements == answers[0].placements

    asyncio.run(body())


def test_continue_as_new_keeps_answering_and_replays(temporal_address: str, data_dir: object) -> None:
    async def body() -> None:
        prefix = fresh_prefix()
        async with running_workers(temporal_address, prefix, "inference") as client:
            handle = await start_service(client, prefix, every=3)
            first_run = (await handle.describe()).run_id
            request = cluster_request(PolicyRef(kind="heuristic", name="sjf"), jobs=30)
            expected = plan_schedule(request).placements
            for _ in range(3):  # waves of concurrent plans across several continue-as-new
                answers = await asyncio.gather(*(plan(handle, request) for _ in range(5)))
                assert all(a.placements == expected for a in answers)
            latest = await handle.describe()
            assert latest.run_id != first_run and latest.status == WorkflowExecutionStatus.RUNNING
            # The first two runs, both closed by continue-as-new (15 plans, 3 per run). The
            # running one is left out: its history may end before its first workflow task.
            first = await client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()
            last_event = first.events[-1]
            assert last_event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            second_run = last_event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            histories = [
                first,
                await client.get_workflow_handle(handle.id, run_id=second_run).fetch_history(),
            ]
            for history in histories:
                kinds = [e.event_type for e in history.events]
                accepted = kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
                completed = kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
                assert accepted >= 3 and completed == accepted, "continued as new with plans in flight"
                assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        replayer = Replayer(workflows=[SchedulerServiceWorkflow], data_converter=DATA_CONVERTER)
        for history in histories:
            await replayer.replay_workflow(history)

    asyncio.run(body())


def test_the_first_run_hands_over_at_its_share_of_the_budget(temporal_address: str, data_dir: object) -> None:
    """Instance i of n starts with first_run_share (i+1)/n: its first run continues as new
    early, later runs use the whole budget, so instances fed in turn never all hand over
    at once."""

    async def body() -> None:
        prefix = fresh_prefix()
        async with running_workers(temporal_address, prefix, "inference") as client:
            handle = await client.start_workflow(
                SchedulerServiceWorkflow.run,
                SchedulerServiceInput(continue_as_new_every=4, first_run_share=0.5),
                id=f"scheduler-service-{uuid.uuid4().hex[:8]}",
                task_queue=queues(prefix)[1],
            )
            first_run = (await handle.describe()).run_id
            request = cluster_request(PolicyRef(kind="heuristic", name="sjf"), jobs=20)
            for _ in range(7):
                await plan(handle, request)
            runs, run_id = [], first_run
            for _ in range(2):
                history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
                kinds = [e.event_type for e in history.events]
                runs.append(kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED))
                last = history.events[-1]
                assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
                run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            assert runs == [2, 4]

    asyncio.run(body())
