"""Whatever the contracts accept, the plan activity computes: requests drawn anywhere in
the bounds of worker/contracts/ids.py (extremes included: a millicore node, a GPU of speed
0.01, a 1e8 s job submitted 1e9 s from now) plan with finite times and metrics, never the
division by zero or the infinite runtimes that degenerate input used to cause. The
activity function is called directly: no Temporal needed for what it computes."""

from __future__ import annotations

import math
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.activities.inference import plan_schedule
from worker.contracts import (
    MAX_CPUS,
    MAX_GPU_SPEED,
    MAX_GPUS,
    MAX_MEMORY_GB,
    MAX_RUNTIME_S,
    MAX_TIME_S,
    MIN_CPUS,
    MIN_GPU_SPEED,
    MIN_GPUS,
    MIN_SECONDS,
    JobSpec,
    NodeSpec,
    PlanInput,
    PolicyRef,
)


def bounded(low: float, high: float) -> st.SearchStrategy[float]:
    """Anywhere in [low, high], the ends themselves often."""
    return st.one_of(st.sampled_from([low, high]), st.floats(low, high, allow_nan=False))


GPU_TYPES = ("p5", "p4", "slow", "fast")
gpu_count = st.one_of(st.just(0.0), bounded(MIN_GPUS, MAX_GPUS), st.integers(1, 8).map(float))


@st.composite
def nodes(draw: st.DrawFn, index: int) -> NodeSpec:
    types = draw(st.lists(st.sampled_from(GPU_TYPES), max_size=2, unique=True))
    return NodeSpec(
        id=f"n{index}",
        cpus=draw(bounded(MIN_CPUS, MAX_CPUS)),
        memory_gb=draw(bounded(0, MAX_MEMORY_GB)),
        gpus={t: draw(gpu_count) for t in types},
        gpu_speed={t: draw(bounded(MIN_GPU_SPEED, MAX_GPU_SPEED)) for t in types if t in ("slow", "fast")},
        status=draw(st.sampled_from(["OK", "OK", "OK", "BUSY", "DOWN"])),
    )


@st.composite
def jobs(draw: st.DrawFn, index: int) -> JobSpec:
    return JobSpec(
        id=f"j{index}",
        cpus=draw(bounded(MIN_CPUS, MAX_CPUS)),
        memory_gb=draw(bounded(0, MAX_MEMORY_GB)),
        gpus=draw(gpu_count),
        gpu_types=draw(st.none() | st.lists(st.sampled_from(GPU_TYPES), min_size=1, max_size=2, unique=True)),
        priority=draw(st.integers(1, 3)),
        runtime_estimate_s=draw(bounded(MIN_SECONDS, MAX_RUNTIME_S)),
        deadline_s=draw(st.none() | bounded(MIN_SECONDS, MAX_TIME_S)),
        submit_s=draw(bounded(0, MAX_TIME_S)),
    )


@st.composite
def plan_inputs(draw: st.DrawFn) -> PlanInput:
    node_count = draw(st.integers(1, 4))
    job_count = draw(st.integers(1, 6))
    return PlanInput(
        nodes=[draw(nodes(i)) for i in range(node_count)],
        jobs=[draw(jobs(i)) for i in range(job_count)],
        policy=PolicyRef(
            kind="heuristic",
            name=draw(st.sampled_from(["edf", "sjf+fastest", "easy:sjf+deadline", "fifo+fgd", "packing"])),
        ),
        baseline=draw(st.sampled_from(["edf", "wfp3+bestfit", None])),
        window=draw(st.integers(1, 8)),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=plan_inputs())
def test_any_request_within_the_bounds_plans_with_finite_numbers(request: PlanInput) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's inf/nan warnings fail the test
        out = plan_schedule(request)
    assert {p.job_id for p in out.placements} | {u.job_id for u in out.unplaced} == {
        j.id for j in request.jobs
    }
    for placement in out.placements:
        assert math.isfinite(placement.start_s) and math.isfinite(placement.finish_s)
        assert placement.finish_s >= placement.start_s
    for metrics in (out.metrics, out.baseline.metrics if out.baseline else out.metrics):
        assert all(math.isfinite(v) for v in metrics.model_dump().values()), metrics
