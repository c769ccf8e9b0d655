"""Turn a policy into a placement plan for a given cluster state and pending jobs.

The plan is a rollout in the simulator: every pending job is submitted now, runtimes are
the estimates (the only runtimes a caller knows), and the policy places jobs as nodes
free up. A job's simulated start time says when it would start if the cluster behaves as
estimated; jobs that fit no node are listed with the reason instead of being dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from worker.sim.engine import DONE, RUNNING
from worker.sim.evaluate import run_episode
from worker.sim.heuristics.composed import ComposedHeuristic
from worker.sim.metrics import EpisodeMetrics
from worker.sim.model import Job, Node, NodeStatus, Scenario
from worker.sim.policy import Policy


@dataclass(frozen=True, slots=True)
class Placement:
    job_id: str
    node_id: str
    gpu_type: str | None
    start_s: float
    finish_s: float
    meets_deadline: bool
    priority: int = 2


@dataclass(frozen=True, slots=True)
class Unplaced:
    job_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    policy: str
    placements: list[Placement]
    unplaced: list[Unplaced]
    metrics: EpisodeMetrics
    decisions: int = 0
    notes: list[str] = field(default_factory=list)


def plan_schedule(policy: Policy, nodes: list[Node], jobs: list[Job], window: int = 32) -> Plan:
    if not nodes:
        raise ValueError("a plan needs at least one node")
    ordered = tuple(sorted(jobs, key=lambda j: j.submit_s))
    longest = max((j.runtime_s for j in ordered), default=0.0)
    slowest = min([1.0] + [n.speed_of(t) for n in nodes for t in n.gpus]) or 1.0
    horizon = max(j.submit_s for j in ordered) + (len(ordered) + 1) * longest / slowest + 1.0
    scenario = Scenario("plan", tuple(nodes), ordered, horizon if ordered else 1.0)
    inner = getattr(policy, "wrapped", policy)  # wrappers (a time budget) expose the policy
    if isinstance(inner, ComposedHeuristic):
        inner.lenient, inner.note = True, None  # a plan's jobs may simply carry no deadlines
    env = run_episode(policy, scenario, window, sim_seed=0)
    sim = env.sim
    placements: list[Placement] = []
    unplaced: list[Unplaced] = []
    for i, job in enumerate(ordered):
        if sim.state[i] in (DONE, RUNNING):
            gpu_type = sim.gpu_types[sim.type_of[i]] if sim.type_of[i] >= 0 else None
            speed = 1.0 if gpu_type is None else float(sim.speed[sim.node_of[i], sim.type_of[i]])
            finish = float(sim.start[i] + job.runtime_s / speed)
            placements.append(
                Placement(
                    job.id,
                    sim.node_ids[sim.node_of[i]],
                    gpu_type,
                    float(sim.start[i]),
                    finish,
                    finish <= job.deadline_s,
                    job.priority,
                )
            )
        elif not sim.schedulable[i]:
            unplaced.append(Unplaced(job.id, why_unschedulable(job, nodes)))
        else:
            unplaced.append(Unplaced(job.id, "not started before the plan's horizon"))
    placements.sort(key=lambda p: (p.start_s, p.job_id))
    notes = [inner.note] if getattr(inner, "note", None) else []
    return Plan(policy.name, placements, unplaced, env.metrics(), sim.placements, notes)


def why_unschedulable(job: Job, nodes: list[Node]) -> str:
    """The first requirement no available node meets, in words a user can act on."""
    ok = [n for n in nodes if n.status == NodeStatus.OK]
    if not ok:
        return "no node is OK (all are BUSY or DOWN)"
    if job.cpus > max(n.cpus for n in ok):
        return f"needs {job.cpus:g} cpus; the largest OK node has {max(n.cpus for n in ok):g}"
    if job.memory_gb > max(n.memory_gb for n in ok):
        return f"needs {job.memory_gb:g} GB memory; the largest OK node has {max(n.memory_gb for n in ok):g}"
    if job.gpus > 0:
        types = set(job.gpu_types) or {t for n in ok for t in n.gpus}
        best = max((c for n in ok for t, c in n.gpus.items() if t in types), default=0.0)
        wanted = "/".join(sorted(job.gpu_types)) if job.gpu_types else "any type"
        if best < job.gpus:
            return f"needs {job.gpus:g} GPUs ({wanted}); the most on one OK node is {best:g}"
    return "fits no single OK node (cpus, memory and GPUs together)"
