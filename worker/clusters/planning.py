"""A cluster snapshot as a plan request, and a plan as a tick's decisions; the same for
every cluster manager.

The plan sees each node as what is free on it now: running jobs' remaining time is not
modelled (Slurm's time limits are upper bounds, often far off), so a node is planned as
its free CPUs, memory and GPUs, fully allocated nodes are BUSY and drained or down ones
DOWN. Every pending job is submitted at the read, its runtime estimate
(`estimate=` in its comment, else its time limit) as the plan's runtime.
A job the plan starts at the read is started now on the plan's node; one it starts later
is deferred in the plan's order; one it cannot place at all (it needs more than any node
has free now) gets no decision, so the cluster manager starts it when room appears.
"""

from __future__ import annotations

from pydantic import ValidationError

from worker.contracts import (
    MAX_JOBS,
    MAX_NODES,
    MAX_RUNTIME_S,
    MAX_TIME_S,
    MIN_CPUS,
    MIN_SECONDS,
    JobSpec,
    NodeSpec,
    PlanInput,
    PlanOutput,
    PolicyRef,
)
from worker.contracts.clusters import (
    ClusterConfig,
    ClusterDecision,
    ClusterNode,
    ClusterPlan,
    ClusterSnapshot,
    SkippedJob,
)

START_NOW_S = 1e-6
"""A placement planned this close to the read starts now."""


def node_spec(node: ClusterNode, config: ClusterConfig) -> NodeSpec:
    free = node.takes_jobs and node.free_cpus > 0
    status = "OK" if free else ("BUSY" if node.state in ("idle", "mixed", "allocated") else "DOWN")
    gpus = node.free_gpus if free else node.gpus
    speeds = {t: config.gpu_speed[t] for t in gpus if t in config.gpu_speed}
    return NodeSpec(
        id=node.name,
        cpus=float(node.free_cpus if free else max(node.cpus, MIN_CPUS)),
        memory_gb=node.free_memory_gb if free else node.memory_gb,
        gpus={t: float(c) for t, c in gpus.items()},
        gpu_speed=speeds or None,
        status=status,
    )


def plan_input(
    config: ClusterConfig, snapshot: ClusterSnapshot, policy: PolicyRef, window: int
) -> tuple[PlanInput | None, list[SkippedJob]]:
    """The plan request (None when nothing can be planned) and the pending jobs left out:
    beyond the MAX_JOBS oldest, or outside the plan's bounds (a job no cluster could
    hold). Leaving them out keeps one odd job from failing the whole tick."""
    left_out: list[SkippedJob] = []
    jobs: list[JobSpec] = []
    for job in snapshot.pending:
        if len(jobs) == MAX_JOBS:
            left_out.append(SkippedJob(job_id=job.id, reason=f"beyond the {MAX_JOBS} oldest pending jobs"))
            continue
        request = job.request
        deadline = None if job.deadline is None else job.deadline - snapshot.read_at
        try:
            jobs.append(
                JobSpec(
                    id=job.id,
                    cpus=float(request.cpus),
                    memory_gb=request.memory_gb,
                    gpus=float(request.gpus),
                    gpu_types=request.gpu_types,
                    priority=job.plan_priority,
                    runtime_estimate_s=min(max(request.time_limit_s, MIN_SECONDS), MAX_RUNTIME_S),
                    deadline_s=None if deadline is None else min(max(MIN_SECONDS, deadline), MAX_TIME_S),
                )
            )
        except ValidationError as error:
            left_out.append(SkippedJob(job_id=job.id, reason=f"outside the plan's bounds: {_first(error)}"))
    nodes: list[NodeSpec] = []
    for node in snapshot.nodes[:MAX_NODES]:
        try:
            nodes.append(node_spec(node, config))
        except ValidationError:
            continue  # a node no plan can describe takes no job from the plan
    if not jobs or not nodes:
        return None, left_out
    return PlanInput(nodes=nodes, jobs=jobs, policy=policy, baseline=None, window=window), left_out


def _first(error: ValidationError) -> str:
    detail = error.errors()[0]
    return f"{'.'.join(map(str, detail['loc']))}: {detail['msg']}"


def cluster_plan(snapshot: ClusterSnapshot, output: PlanOutput) -> ClusterPlan:
    """Starts now first, then deferrals in planned-start order: the rank is the order."""
    pending = {j.id for j in snapshot.pending}
    placements = sorted(
        (p for p in output.placements if p.job_id in pending), key=lambda p: (p.start_s, p.job_id)
    )
    decisions = [
        ClusterDecision(
            job_id=p.job_id,
            action="start" if p.start_s <= START_NOW_S else "defer",
            rank=rank,
            node=p.node_id if p.start_s <= START_NOW_S else None,
            planned_start_s=p.start_s,
        )
        for rank, p in enumerate(placements)
    ]
    return ClusterPlan(
        policy=output.policy_id or output.policy,
        decisions=decisions,
        unplaced=[SkippedJob(job_id=u.job_id, reason=u.reason) for u in output.unplaced],
        metrics=output.metrics,
        notes=output.notes,
        elapsed_ms=output.elapsed_ms,
    )
