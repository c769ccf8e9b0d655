"""ClusterLoopWorkflow on a real Temporal dev server, the worker's real inference Worker
and a real Slurm: ticks start jobs where the plan said; an unreachable controller is
recorded and retried, never ending the workflow."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from support.slurm_cluster import SlurmCluster
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.worker import Replayer

from worker.codec import DATA_CONVERTER
from worker.contracts import (
    DEPLOY_UPDATE,
    INFERENCE_TASK_QUEUE,
    Deployment,
    DeployRequest,
    scheduler_service_id,
)
from worker.contracts.clusters import ClusterConfig, ClusterLoopInput, ClusterLoopStatus, cluster_workflow_id
from worker.main import build_workers, connect
from worker.workflows.cluster_loop import ClusterLoopWorkflow
from worker.workflows.scheduler_service import SchedulerServiceWorkflow

pytestmark = [pytest.mark.slurm, pytest.mark.integration]

WHOLE_P5 = ("--gres=gpu:p5:8", "-c", "8", "--mem=8000", "-t", "20")


@asynccontextmanager
async def inference_worker(address: str) -> AsyncIterator[tuple[Client, str]]:
    """A client and the worker's inference Worker on a fresh queue."""
    queue = f"t-{uuid.uuid4().hex[:8]}-{INFERENCE_TASK_QUEUE}"
    client = await connect(address=address)
    (worker,) = build_workers(client, "inference", queue.removesuffix(INFERENCE_TASK_QUEUE))
    async with worker:
        yield client, queue


async def status_when(
    handle: WorkflowHandle, done: Callable[[ClusterLoopStatus], bool], timeout_s: float
) -> ClusterLoopStatus:
    deadline = time.monotonic() + timeout_s
    while True:
        status = await handle.query(ClusterLoopWorkflow.status)
        if done(status):
            return status
        assert time.monotonic() < deadline, f"after {timeout_s} s: {status.model_dump_json(indent=1)}"
        await asyncio.sleep(0.2)


def test_loop_ticks_and_starts_jobs_where_the_plan_said(
    temporal_address: str, slurm: SlurmCluster, enforce: ClusterConfig
) -> None:
    jobs = [slurm.submit_deferred(*WHOLE_P5) for _ in range(6)]
    config = enforce.model_copy(update={"name": f"loop-{uuid.uuid4().hex[:6]}", "interval_s": 1})

    async def body() -> ClusterLoopStatus:
        async with inference_worker(temporal_address) as (client, queue):
            handle = await client.start_workflow(
                ClusterLoopWorkflow.run,
                ClusterLoopInput(config=config),
                id=cluster_workflow_id(config.name),
                task_queue=queue,
            )
            try:
                return await status_when(handle, lambda s: any(r.running == 4 for r in s.history), 60)
            finally:
                await handle.terminate("test over")

    status = asyncio.run(body())

    first, settled = status.history[0], status.history[-1]
    assert first.error is None and first.policy == "easy:edf+fastest"
    assert (first.nodes, first.pending, first.running) == (8, 6, 0)
    starts = [d for d in first.decisions if d.action == "start"]
    assert [d.outcome for d in first.decisions] == ["applied"] * 6 and len(starts) == 4
    for decision in starts:
        assert slurm.wait_job_state(decision.job_id, ["RUNNING"])["NodeList"] == decision.node
    # Ticks before Slurm's next pass (up to a second) may find the same four pending and
    # pin them to the same nodes again; once they run, no p5 node has room: the two wait.
    for record in status.history[1:-1]:
        assert {d.node for d in record.decisions if d.action == "start"} <= {d.node for d in starts}
    assert settled.error is None and (settled.running, settled.pending) == (4, 2)
    assert settled.decisions == []
    assert {u.job_id for u in settled.unplaced} == set(jobs) - {d.job_id for d in starts}


def test_unreachable_controller_is_recorded_and_retried(temporal_address: str, tmp_path: object) -> None:
    config = ClusterConfig(
        name=f"gone-{uuid.uuid4().hex[:6]}",
        endpoint="/nonexistent/slurm.conf",
        mode="enforce",
        interval_s=1,
        step_attempts=1,
    )

    async def body() -> tuple[ClusterLoopStatus, WorkflowExecutionStatus | None]:
        async with inference_worker(temporal_address) as (client, queue):
            handle = await client.start_workflow(
                ClusterLoopWorkflow.run,
                ClusterLoopInput(config=config),
                id=cluster_workflow_id(config.name),
                task_queue=queue,
            )
            try:
                status = await status_when(handle, lambda s: s.failed_ticks >= 2, 60)
                return status, (await handle.describe()).status
            finally:
                await handle.terminate("test over")

    status, running = asyncio.run(body())

    assert running == WorkflowExecutionStatus.RUNNING
    assert all(r.error and "/nonexistent/slurm.conf" in r.error for r in status.history)
    gap = (status.history[1].at - status.history[0].at).total_seconds()
    assert gap >= 2 * config.interval_s  # backed off: twice the interval after one failure


def test_loop_plans_with_the_policy_deployed_for_its_class_and_replays(
    temporal_address: str, slurm: SlurmCluster, enforce: ClusterConfig
) -> None:
    jobs = [slurm.submit_deferred(*WHOLE_P5) for _ in range(2)]
    config = enforce.model_copy(
        update={"name": f"deployed-{uuid.uuid4().hex[:6]}", "interval_s": 1, "policy_class": "gpu-farm"}
    )
    deployment = Deployment(policy_class="gpu-farm", policy="sjf+first", kind="heuristic")

    async def body() -> ClusterLoopStatus:
        async with inference_worker(temporal_address) as (client, queue):
            service = await client.start_workflow(
                SchedulerServiceWorkflow.run, id=scheduler_service_id(queue), task_queue=queue
            )
            await service.execute_update(DEPLOY_UPDATE, DeployRequest(deployment=deployment))
            handle = await client.start_workflow(
                ClusterLoopWorkflow.run,
                ClusterLoopInput(config=config),
                id=cluster_workflow_id(config.name),
                task_queue=queue,
            )
            try:
                status = await status_when(handle, lambda s: s.ticks >= 1, 60)
            finally:
                await handle.terminate("test over")
                await service.terminate("test over")
            history = await handle.fetch_history()
            await Replayer(workflows=[ClusterLoopWorkflow], data_converter=DATA_CONVERTER).replay_workflow(
                history
            )
            return status

    status = asyncio.run(body())

    first = status.history[0]
    assert first.policy == "sjf+first"
    assert {d.job_id: d.node for d in first.decisions} == {jobs[0]: "p5n1", jobs[1]: "p5n2"}  # first-fit


def test_stopped_controller_fails_ticks_until_it_is_back(
    temporal_address: str, slurm: SlurmCluster, enforce: ClusterConfig
) -> None:
    config = enforce.model_copy(
        update={"name": f"down-{uuid.uuid4().hex[:6]}", "interval_s": 1, "step_attempts": 1}
    )
    slurm.stop_controller()

    async def body() -> ClusterLoopStatus:
        async with inference_worker(temporal_address) as (client, queue):
            handle = await client.start_workflow(
                ClusterLoopWorkflow.run,
                ClusterLoopInput(config=config),
                id=cluster_workflow_id(config.name),
                task_queue=queue,
            )
            try:
                await status_when(handle, lambda s: s.failed_ticks >= 1, 60)
                await asyncio.to_thread(slurm.start_controller)
                return await status_when(handle, lambda s: s.history[-1].error is None, 60)
            finally:
                await handle.terminate("test over")

    status = asyncio.run(body())

    failed, recovered = status.history[0], status.history[-1]
    assert failed.error is not None and "is slurmctld up?" in failed.error
    assert (recovered.nodes, recovered.error) == (8, None)
