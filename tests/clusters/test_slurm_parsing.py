"""The adapter's reading of Slurm's JSON and its plan conversion, without a Slurm: the
records are shaped as Slurm 22.05's `squeue --json` / `sinfo --json` print them (the
tests in test_slurm_adapter.py check the same against a real one)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from worker.clusters.planning import cluster_plan, node_spec, plan_input
from worker.clusters.slurm import _Unexpressible, node_state, parse_gres, parse_mark, read_job
from worker.contracts import PlacementOut, PlanMetrics, PlanOutput, PolicyRef, UnplacedOut
from worker.contracts.clusters import (
    ClusterConfig,
    ClusterJob,
    ClusterNode,
    ClusterSnapshot,
    JobRequest,
)

CONFIG = ClusterConfig(name="c", endpoint="/etc/slurm/slurm.conf")
NOW = 1_800_000_000.0


def squeue_job(**fields: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "job_id": 7,
        "job_state": "PENDING",
        "cpus": 4,
        "node_count": 1,
        "memory_per_node": 2000,
        "tres_per_node": "gres:gpu:p5:2",
        "time_limit": 30,
        "priority": 4294901750,
        "submit_time": NOW - 60,
        "eligible_time": NOW - 60,
        "deadline": 0,
        "comment": "",
        "admin_comment": "",
        "required_nodes": "",
        "partition": "batch",
        "state_reason": "Priority",
        "array_job_id": 0,
        "array_task_id": None,
        "array_task_string": "",
        "het_job_id": 0,
    }
    job.update(fields)
    return job


def test_gres_strings() -> None:
    assert parse_gres("gpu:p5:8(S:0-1)") == ({"p5": 8}, [])
    assert parse_gres("gres:gpu:2") == ({None: 2}, [])
    assert parse_gres("gpu:p5:2(IDX:0-1),gpu:p4:1(IDX:3)") == ({"p5": 2, "p4": 1}, [])
    assert parse_gres("gpu:(null):0(IDX:N/A)") == ({None: 0}, [])
    assert parse_gres("gres:nic:1,gpu:p4:1") == ({"p4": 1}, ["nic"])
    assert parse_gres("") == ({}, [])


@pytest.mark.parametrize(
    ("state", "flags", "expected"),
    [
        ("idle", [], "idle"),
        ("mixed", [], "mixed"),
        ("allocated", [], "allocated"),
        ("idle", ["DRAIN"], "drain"),
        ("mixed", ["DRAIN"], "drain"),
        ("down", [], "down"),
        ("idle", ["NOT_RESPONDING"], "down"),
        ("future", [], "down"),
    ],
)
def test_node_states(state: str, flags: list[str], expected: str) -> None:
    assert node_state({"state": state, "state_flags": flags}) == expected


def test_pending_job_with_comment_priority_and_deadline() -> None:
    job = read_job(squeue_job(comment="priority=3, deadline=2027-01-15T10:00:00+00:00"), CONFIG, NOW)
    assert job.request == JobRequest(
        cpus=4, memory_gb=2.0, gpus=2, gpu_types=["p5"], time_limit_s=1800, partition="batch"
    )
    assert job.plan_priority == 3
    assert job.deadline == NOW + 7200  # NOW is 2027-01-15T08:00:00Z
    slurm_deadline = read_job(squeue_job(deadline=NOW + 600, comment="deadline=1"), CONFIG, NOW)
    assert slurm_deadline.deadline == NOW + 600  # --deadline wins over the comment


def test_runtime_estimate_from_the_comment_is_finer_than_the_time_limit() -> None:
    def estimate(comment: str) -> float:
        return read_job(squeue_job(comment=comment, time_limit=2), CONFIG, NOW).request.time_limit_s

    assert estimate("priority=1,estimate=37.5") == 37.5
    assert estimate("estimate=500") == 120  # Slurm ends the job at its time limit
    assert estimate("estimate=soon") == estimate("estimate=-3") == estimate("") == 120


def test_the_loops_own_lease_and_pin_are_not_the_users() -> None:
    leased = read_job(
        squeue_job(eligible_time=NOW + 90, admin_comment="rlsched:action=defer,tick=cluster-c.4"), CONFIG, NOW
    )
    assert leased.lease_until == NOW + 90 and leased.mark == "rlsched:action=defer,tick=cluster-c.4"
    pinned = read_job(
        squeue_job(required_nodes="p5n2", admin_comment="rlsched:action=start,node=p5n2,tick=t.1"),
        CONFIG,
        NOW,
    )
    assert pinned.pinned_node == "p5n2"
    assert parse_mark("rlsched:action=start,node=p5n2,tick=t.1") == {
        "action": "start",
        "node": "p5n2",
        "tick": "t.1",
    }
    assert parse_mark("a user's own words") == {}
    with pytest.raises(_Unexpressible, match="asks for nodes p5n3"):
        read_job(
            squeue_job(required_nodes="p5n3", admin_comment="rlsched:action=start,node=p5n2"), CONFIG, NOW
        )
    with pytest.raises(_Unexpressible, match="--begin"):
        read_job(squeue_job(eligible_time=NOW + 90), CONFIG, NOW)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"het_job_id": 7}, "heterogeneous"),
        ({"array_job_id": 7, "array_task_string": "0-4999%10"}, "5000 pending tasks"),
        ({"node_count": 4}, "4 nodes"),
        ({"tres_per_node": "gres:gpu:a100:1"}, "unknown to the plan"),
        ({"tres_per_node": "gres:fpga:1"}, "GRES the plan does not model: fpga"),
        ({"tres_per_node": "", "tres_per_task": "gres:gpu:1"}, "per task"),
        ({"priority": 0, "state_reason": "JobHeldUser"}, "held (JobHeldUser)"),
        ({"state_reason": "Dependency"}, "dependency"),
        ({"features": "bigmem"}, "constraints"),
    ],
)
def test_jobs_the_plan_cannot_express(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(_Unexpressible, match=re.escape(reason)):
        read_job(squeue_job(**fields), CONFIG, NOW)


def test_array_task_and_any_gpu_type_and_unlimited_time() -> None:
    job = read_job(
        squeue_job(job_id=12, array_job_id=10, array_task_id=2, tres_per_node="gres:gpu:1", time_limit=None),
        CONFIG,
        NOW,
    )
    assert job.id == "10_2"
    assert (job.request.gpus, job.request.gpu_types, job.request.time_limit_s) == (1, None, 3600.0)
    known = CONFIG.model_copy(update={"gpu_speed": {"a100": 0.8}})
    assert read_job(squeue_job(tres_per_node="gres:gpu:a100:1"), known, NOW).request.gpu_types == ["a100"]


def node(name: str, state: str = "idle", free_cpus: int = 32, free_gpus: int = 8) -> ClusterNode:
    return ClusterNode(
        name=name,
        state=state,  # type: ignore[arg-type]
        slurm_state=state,
        cpus=32,
        free_cpus=free_cpus,
        memory_gb=256,
        free_memory_gb=200,
        gpus={"p5": 8},
        free_gpus={"p5": free_gpus},
    )


def pending(job_id: str, deadline: float | None = None) -> ClusterJob:
    request = JobRequest(cpus=8, memory_gb=8, gpus=8, gpu_types=["p5"], time_limit_s=600, partition="batch")
    return ClusterJob(
        id=job_id, state="pending", request=request, slurm_priority=1, submit_time=NOW, deadline=deadline
    )


def test_nodes_are_planned_as_what_is_free_now() -> None:
    assert node_spec(node("a", "mixed", free_cpus=20, free_gpus=3), CONFIG).model_dump(
        include={"cpus", "gpus", "status", "memory_gb"}
    ) == {"cpus": 20.0, "memory_gb": 200.0, "gpus": {"p5": 3.0}, "status": "OK"}
    assert node_spec(node("b", "allocated", free_cpus=0, free_gpus=0), CONFIG).status == "BUSY"
    assert node_spec(node("c", "drain"), CONFIG).status == "DOWN"
    assert node_spec(node("d", "down"), CONFIG).status == "DOWN"


def test_plan_input_and_decisions() -> None:
    snapshot = ClusterSnapshot(
        cluster="c",
        read_at=NOW,
        nodes=[node("a"), node("b", "drain")],
        jobs=[pending("1", NOW + 100), pending("2")],
    )
    request, left_out = plan_input(CONFIG, snapshot, PolicyRef(kind="heuristic", name="fifo"), 32)
    assert request is not None and left_out == []
    assert [j.deadline_s for j in request.jobs or []] == [100.0, None]
    metrics = PlanMetrics(
        score=1,
        mean_bounded_slowdown=1,
        p95_bounded_slowdown=1,
        mean_wait=0,
        gpu_utilization=0,
        cpu_utilization=0,
        makespan=1,
        jobs_finished=2,
        deadline_misses=0,
        unschedulable=0,
    )
    output = PlanOutput(
        policy="fifo",
        placements=[
            PlacementOut(
                job_id="2", node_id="a", gpu_type="p5", start_s=600, finish_s=1200, meets_deadline=True
            ),
            PlacementOut(
                job_id="1", node_id="a", gpu_type="p5", start_s=0, finish_s=600, meets_deadline=True
            ),
        ],
        unplaced=[UnplacedOut(job_id="3", reason="needs 64 cpus")],
        metrics=metrics,
    )
    plan = cluster_plan(snapshot, output)
    assert [(d.job_id, d.action, d.node, d.rank) for d in plan.decisions] == [
        ("1", "start", "a", 0),
        ("2", "defer", None, 1),
    ]
    assert plan.unplaced[0].reason == "needs 64 cpus"


@pytest.mark.parametrize(
    "fields",
    [
        {"endpoint": "slurm.conf"},
        {"endpoint": "/etc/../slurm.conf"},
        {"name": "../x"},
        {"fallback": "nonsense"},
        {"interval_s": 0.1},
        {"gpu_speed": {"a100": 0}},
    ],
)
def test_bad_registrations_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ClusterConfig(**{"name": "c", "endpoint": "/etc/slurm/slurm.conf", **fields})


def test_a_job_outside_the_plans_bounds_is_left_out_not_failing_the_tick() -> None:
    huge = pending("huge").model_copy(
        update={"request": pending("x").request.model_copy(update={"gpus": 5000})}
    )
    snapshot = ClusterSnapshot(
        cluster="c", read_at=NOW, nodes=[node("a")], jobs=[huge, pending("1", NOW + 5e9)]
    )
    request, left_out = plan_input(CONFIG, snapshot, PolicyRef(kind="heuristic", name="fifo"), 32)
    assert [s.job_id for s in left_out] == ["huge"] and "gpus" in left_out[0].reason
    assert request is not None and [j.id for j in request.jobs or []] == ["1"]
    assert (request.jobs or [])[0].deadline_s == 1e9  # clamped to the plan's horizon
    nothing, _ = plan_input(
        CONFIG, snapshot.model_copy(update={"jobs": [huge]}), PolicyRef(kind="heuristic", name="fifo"), 32
    )
    assert nothing is None
