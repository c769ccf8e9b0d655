"""SchedulerWorkflow end to end on a real dev server and a real inference worker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from support.workers import fresh_prefix, queues, running_workers
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from worker.codec import DATA_CONVERTER
from worker.contracts import (
    JobSpec,
    NodeSpec,
    PlanInput,
    PlanOutput,
    PolicyRef,
    SyntheticSpec,
    WorkloadConfig,
)
from worker.workflows.scheduler import SchedulerWorkflow

pytestmark = pytest.mark.integration


def cluster_request(policy: PolicyRef, jobs: int = 100, nodes: int = 16) -> PlanInput:
    return PlanInput(
        nodes=[NodeSpec(id=f"n{i}", cpus=64, gpus={"p5" if i % 2 else "p4": 8}) for i in range(nodes)],
        jobs=[
            JobSpec(
                id=f"j{i}",
                cpus=4,
                gpus=[0, 1, 2, 4][i % 4],
                priority=1 + i % 3,
                runtime_estimate_s=600 + 10 * i,
                deadline_s=3_000 + 30 * i,
                gpu_types=["p5"] if i % 5 == 0 else None,
            )
            for i in range(jobs)
        ],
        policy=policy,
        baseline="edf",
    )


async def plan(address: str, request: PlanInput, data_dir: object = None) -> PlanOutput:
    prefix = fresh_prefix()
    async with running_workers(address, prefix, "inference") as client:
        return await client.execute_workflow(
            SchedulerWorkflow.run, request, id=f"schedule-{uuid.uuid4()}", task_queue=queues(prefix)[1]
        )


def test_heuristic_plan_with_baseline_and_replay(temporal_address: str, data_dir: object) -> None:
    async def body() -> None:
        prefix = fresh_prefix()
        async with running_workers(temporal_address, prefix, "inference") as client:
            workflow_id = f"schedule-{uuid.uuid4()}"
            out = await client.execute_workflow(
                SchedulerWorkflow.run,
                cluster_request(PolicyRef(kind="heuristic", name="sjf")),
                id=workflow_id,
                task_queue=queues(prefix)[1],
            )
            assert out.policy == "sjf" and out.checkpoint is None
            assert len(out.placements) + len(out.unplaced) == 100
            assert out.baseline is not None and out.baseline.policy == "edf"
            assert out.metrics.jobs_finished == len(out.placements)
            assert out.elapsed_ms > 0
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        replayer = Replayer(workflows=[SchedulerWorkflow], data_converter=DATA_CONVERTER)
        await replayer.replay_workflow(history)

    asyncio.run(body())


def test_synthetic_request(temporal_address: str, data_dir: object) -> None:
    request = PlanInput(
        synthetic=SyntheticSpec(workload=WorkloadConfig(name="steady", nodes=8, jobs=60), seed=3),
        policy=PolicyRef(kind="heuristic", name="packing"),
        baseline="fifo",
    )
    out = asyncio.run(plan(temporal_address, request))
    assert out.policy == "packing" and out.baseline is not None and out.baseline.policy == "fifo"
    assert len(out.placements) + len(out.unplaced) == 60


@pytest.mark.parametrize(
    ("policy", "error_type", "words"),
    [
        (PolicyRef(kind="heuristic", name="lifo"), "InvalidInput", "unknown heuristic 'lifo'"),
        (
            PolicyRef(kind="checkpoint", name="ppo", checkpoint="/nonexistent/ckpt"),
            "CheckpointError",
            "/nonexistent",
        ),
        (PolicyRef(kind="checkpoint", name="ppo"), "InvalidInput", "names no checkpoint"),
    ],
)
def test_unfixable_requests_fail_at_once_with_a_clear_error(
    temporal_address: str, data_dir: object, policy: PolicyRef, error_type: str, words: str
) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        asyncio.run(plan(temporal_address, cluster_request(policy, jobs=5, nodes=2)))
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == error_type and cause.non_retryable
    assert words in cause.message
