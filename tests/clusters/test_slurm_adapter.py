"""The Slurm adapter against a real Slurm 22.05 (tests/support/slurm_cluster.py): what it reads
agrees with `scontrol show`, and what an `enforce` tick writes is what Slurm then does."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from support.slurm_cluster import DEFAULT_NODES, EmulatedNode, SlurmCluster, StartSlurm

from worker.clusters.planning import cluster_plan, plan_input
from worker.clusters.slurm import apply_plan, read_cluster
from worker.contracts import PolicyRef
from worker.contracts.clusters import ClusterConfig, ClusterPlan, ClusterSnapshot

pytestmark = pytest.mark.slurm

POLICY = PolicyRef(kind="heuristic", name="easy:edf+fastest")
WHOLE_P5 = ("--gres=gpu:p5:8", "-c", "8", "--mem=8000", "-t", "20")
"""A job that takes a whole p5 node's GPUs: where it may start is unambiguous."""


def plan_for(config: ClusterConfig, snapshot: ClusterSnapshot) -> ClusterPlan:
    from worker.activities.inference import _plan

    request, left_out = plan_input(config, snapshot, POLICY, config.window)
    assert request is not None and left_out == []
    return cluster_plan(snapshot, _plan(request))


def wait_for_reason(slurm: SlurmCluster, job_id: str, reason: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while slurm.scontrol_show("job", job_id)["Reason"] != reason:
        assert time.monotonic() < deadline, slurm.scontrol_show("job", job_id)
        time.sleep(0.1)


def epoch(slurm_time: str) -> float:
    return datetime.fromisoformat(slurm_time).timestamp()


def test_view_of_nodes_and_jobs_matches_scontrol(slurm: SlurmCluster, enforce: ClusterConfig) -> None:
    running = slurm.submit("--gres=gpu:p4:3", "-c", "6", "--mem=5000", "-t", "30")
    slurm.wait_job_state(running, ["RUNNING"])
    pending = [
        slurm.submit_deferred("--gres=gpu:p5:2", "-c", "4", "--mem=3000", "-t", "15", "--comment=priority=3"),
        slurm.submit_deferred("--gres=gpu:1", "-c", "2", "-t", "7", "--deadline=now+2hours"),
        slurm.submit_deferred("-c", "3", "--mem=2000", "-t", "1:00:00", "--comment=deadline=1900000000"),
    ]
    slurm.run("scontrol", "update", "nodename=p5n4", "state=drain", "reason=maintenance")

    snapshot = read_cluster(enforce)

    assert [n.name for n in snapshot.nodes] == sorted(n.name for n in DEFAULT_NODES)
    for node in snapshot.nodes:
        record = slurm.scontrol_show("node", node.name)
        assert node.cpus == int(record["CPUTot"])
        assert node.free_cpus == int(record["CPUTot"]) - int(record["CPUAlloc"])
        assert node.memory_gb * 1000 == int(record["RealMemory"])
        assert node.free_memory_gb * 1000 == int(record["RealMemory"]) - int(record["AllocMem"])
        gres = record["Gres"]
        assert node.gpus == ({} if gres == "(null)" else {gres.split(":")[1]: int(gres.split(":")[2])})
        expected_state = {"IDLE": "idle", "MIXED": "mixed", "ALLOCATED": "allocated"}.get(
            record["State"], "drain"
        )
        assert node.state == expected_state, record["State"]
    assert next(n for n in snapshot.nodes if n.name == "p4n1").free_gpus == {"p4": 1}
    assert next(n for n in snapshot.nodes if n.name == "p5n4").state == "drain"

    jobs = {j.id: j for j in snapshot.jobs}
    assert set(jobs) == {running, *pending}
    for job_id, job in jobs.items():
        record = slurm.scontrol_show("job", job_id)
        assert job.state == record["JobState"].lower()
        assert job.request.cpus == int(record["NumCPUs"])
        assert job.slurm_priority == int(record["Priority"])
        assert job.submit_time == epoch(record["SubmitTime"])
        hours, minutes, seconds = (int(x) for x in record["TimeLimit"].split(":"))
        assert job.request.time_limit_s == hours * 3600 + minutes * 60 + seconds
        gres = record.get("TresPerNode", "")
        assert job.request.gpus == (int(gres.rsplit(":", 1)[1]) if gres else 0)
    assert jobs[running].nodes == ["p4n1"] and jobs[running].request.memory_gb == 5.0
    assert jobs[pending[0]].request.gpu_types == ["p5"] and jobs[pending[0]].plan_priority == 3
    assert jobs[pending[1]].request.gpu_types is None
    assert jobs[pending[1]].deadline == epoch(slurm.scontrol_show("job", pending[1])["Deadline"])
    assert jobs[pending[1]].request.memory_gb == 2.0  # DefMemPerCPU=1000 x 2 CPUs
    assert jobs[pending[2]].deadline == 1_900_000_000
    assert all(jobs[j].lease_until is not None for j in pending)


def test_jobs_the_model_cannot_express_are_skipped_with_a_reason(start_slurm: StartSlurm) -> None:
    slurm = start_slurm((*DEFAULT_NODES[:2], EmulatedNode("h100n1", 32, 256_000, "h100", 4)))
    config = ClusterConfig(name="odd", endpoint=str(slurm.conf), mode="enforce")
    multi = slurm.submit_deferred("-N", "2", "-c", "2")
    array = slurm.submit_deferred("--array=0-4999")
    unknown = slurm.submit_deferred("--gres=gpu:h100:1")
    held = slurm.submit("--hold")
    by_user = slurm.submit("--begin=now+600")
    plain = slurm.submit_deferred("-c", "2")

    snapshot = read_cluster(config)

    reasons = {s.job_id: s.reason for s in snapshot.skipped}
    assert "2 nodes" in reasons[multi]
    assert "5000 pending tasks" in reasons[array]
    assert "'h100'" in reasons[unknown]
    assert "held" in reasons[held]
    assert "--begin" in reasons[by_user]
    assert [j.id for j in snapshot.pending] == [plain]
    assert any("h100" in note for note in snapshot.notes)
    assert next(n for n in snapshot.nodes if n.name == "h100n1").gpus == {}

    known = read_cluster(config.model_copy(update={"gpu_speed": {"h100": 2.0}}))
    assert {j.id for j in known.pending} == {plain, unknown}
    assert next(n for n in known.nodes if n.name == "h100n1").gpus == {"h100": 4}
    plan = plan_for(config, snapshot)
    assert [(o.job_id, o.outcome) for o in apply_plan(config, snapshot, plan, "odd.1")] == [
        (plain, "applied")
    ]


def test_enforce_tick_starts_jobs_where_the_plan_said(slurm: SlurmCluster, enforce: ClusterConfig) -> None:
    jobs = [slurm.submit_deferred(*WHOLE_P5) for _ in range(6)]
    snapshot = read_cluster(enforce)
    plan = plan_for(enforce, snapshot)
    starts = [d for d in plan.decisions if d.action == "start"]
    defers = [d for d in plan.decisions if d.action == "defer"]
    assert len(starts) == 4 and len(defers) == 2  # four p5 nodes, six jobs wanting a whole one
    assert {d.node for d in starts} == {"p5n1", "p5n2", "p5n3", "p5n4"}

    outcomes = apply_plan(enforce, snapshot, plan, "test.1")

    assert [o.outcome for o in outcomes] == ["applied"] * 6
    for decision in starts:
        record = slurm.wait_job_state(decision.job_id, ["RUNNING"])
        assert record["NodeList"] == decision.node
    priorities = []
    for decision in defers:
        record = slurm.scontrol_show("job", decision.job_id)
        assert (record["JobState"], record["Reason"]) == ("PENDING", "BeginTime")
        assert epoch(record["StartTime"]) > snapshot.read_at + enforce.lease - 5
        priorities.append(int(record["Priority"]))
    assert priorities == sorted(priorities, reverse=True)  # the plan's order
    assert set(jobs) == {d.job_id for d in plan.decisions}

    again = apply_plan(enforce, snapshot, plan, "test.1")  # the same tick retried
    assert {o.outcome for o in again} == {"unchanged"}
    assert [int(slurm.scontrol_show("job", d.job_id)["Priority"]) for d in defers] == priorities


def test_jobs_cancelled_or_changed_between_read_and_apply_are_skipped(
    slurm: SlurmCluster, enforce: ClusterConfig
) -> None:
    jobs = [slurm.submit_deferred(*WHOLE_P5) for _ in range(4)]
    snapshot = read_cluster(enforce)
    plan = plan_for(enforce, snapshot)
    slurm.run("scancel", jobs[1])
    slurm.run("scontrol", "update", f"jobid={jobs[3]}", "MinMemoryNode=16000")

    outcomes = {o.job_id: o for o in apply_plan(enforce, snapshot, plan, "test.1")}

    assert outcomes[jobs[1]].outcome == "skipped"
    assert "gone" in outcomes[jobs[1]].reason
    assert outcomes[jobs[3]].outcome == "skipped"
    assert "request changed" in outcomes[jobs[3]].reason
    assert slurm.job_state(jobs[3]) == "PENDING"
    assert slurm.scontrol_show("job", jobs[3])["ReqNodeList"] == "(null)"
    for job_id in (jobs[0], jobs[2]):
        assert outcomes[job_id].outcome == "applied"
        assert slurm.wait_job_state(job_id, ["RUNNING"])["NodeList"] == outcomes[job_id].node


def test_drained_node_receives_nothing(slurm: SlurmCluster, enforce: ClusterConfig) -> None:
    slurm.run("scontrol", "update", "nodename=p5n1", "state=drain", "reason=test")
    jobs = [slurm.submit_deferred(*WHOLE_P5) for _ in range(4)]
    snapshot = read_cluster(enforce)
    plan = plan_for(enforce, snapshot)
    assert "p5n1" not in {d.node for d in plan.decisions}
    assert sum(d.action == "start" for d in plan.decisions) == 3

    target = next(d for d in plan.decisions if d.action == "start")
    slurm.run("scontrol", "update", f"nodename={target.node}", "state=drain", "reason=test")  # after the read
    outcomes = {o.job_id: o for o in apply_plan(enforce, snapshot, plan, "test.1")}

    assert outcomes[target.job_id].outcome == "skipped"
    assert f"node {target.node} is" in outcomes[target.job_id].reason
    assert "DRAIN" in outcomes[target.job_id].reason
    started = [o for o in outcomes.values() if o.outcome == "applied" and o.action == "start"]
    assert len(started) == 2
    for outcome in started:
        assert slurm.wait_job_state(outcome.job_id, ["RUNNING"])["NodeList"] == outcome.node
    assert slurm.job_state(target.job_id) == "PENDING"
    running_on = slurm.run("squeue", "-h", "-t", "RUNNING", "-o", "%N").split()
    assert len(running_on) == 2 and not {"p5n1", target.node} & set(running_on)
    assert set(jobs) == {d.job_id for d in plan.decisions}


def test_advise_changes_nothing_in_slurm(slurm: SlurmCluster, enforce: ClusterConfig) -> None:
    advise = enforce.model_copy(update={"mode": "advise"})
    jobs = [slurm.submit_deferred(*WHOLE_P5) for _ in range(6)]
    fields = ("JobState", "Reason", "Priority", "ReqNodeList", "StartTime", "AdminComment", "NodeList")

    def records() -> list[dict[str, str]]:
        return [{k: slurm.scontrol_show("job", j)[k] for k in fields} for j in jobs]

    for job_id in jobs:  # Slurm's own next pass sets their reason (None -> BeginTime) first
        wait_for_reason(slurm, job_id, "BeginTime")
    before = records()
    snapshot = read_cluster(advise)
    plan = plan_for(advise, snapshot)
    outcomes = apply_plan(advise, snapshot, plan, "test.1")

    assert [o.outcome for o in outcomes] == ["advised"] * 6
    assert sum(o.action == "start" for o in outcomes) == 4
    assert records() == before
