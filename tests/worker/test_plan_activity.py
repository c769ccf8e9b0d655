"""The plan activity called directly (no Temporal): time budget, optional baseline."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from worker.activities.inference import PLAN_TIMEOUT_TYPE, plan_schedule
from worker.contracts import JobSpec, NodeSpec, PlanInput, PolicyRef

SJF = PolicyRef(kind="heuristic", name="sjf")


def request(jobs: int, nodes: int, **extra: object) -> PlanInput:
    return PlanInput(
        nodes=[NodeSpec(id=f"n{i}", cpus=64, gpus={"p5" if i % 2 else "p4": 8}) for i in range(nodes)],
        jobs=[
            JobSpec(
                id=f"j{i}", cpus=4, gpus=[0, 1, 2, 8][i % 4], runtime_estimate_s=600 + i, deadline_s=9_000
            )
            for i in range(jobs)
        ],
        policy=SJF,
        **extra,
    )


def test_a_plan_that_outruns_its_timeout_gives_up_without_retry() -> None:
    with pytest.raises(ApplicationError) as info:
        plan_schedule(request(3_000, 500, timeout_s=0.05))
    assert info.value.type == PLAN_TIMEOUT_TYPE
    assert info.value.non_retryable
    assert "3000 jobs on 500 nodes" in info.value.message
    assert "send fewer jobs or nodes" in info.value.message


def test_the_same_request_with_time_to_spare_finishes() -> None:
    out = plan_schedule(request(40, 4, timeout_s=600))
    assert len(out.placements) == 40 and out.baseline is not None and out.baseline.policy == "edf"


def test_baseline_none_is_skipped_and_a_repeated_input_gets_the_same_baseline() -> None:
    assert plan_schedule(request(40, 4, baseline=None)).baseline is None
    first = plan_schedule(request(40, 4, baseline="fifo"))
    again = plan_schedule(
        request(40, 4, baseline="fifo").model_copy(update={"policy": PolicyRef(kind="heuristic", name="edf")})
    )
    assert first.baseline == again.baseline and first.baseline is not None
    assert first.baseline.policy == "fifo"
