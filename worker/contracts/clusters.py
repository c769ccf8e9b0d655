"""What crosses Temporal for a registered real cluster (ClusterLoopWorkflow and its
activities): the cluster's registration, a snapshot of its nodes and jobs, the decisions
of a tick and what became of each. Pydantic and the standard library only, like
worker/contracts.py (which this module joins as worker/contracts/clusters.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from worker.contracts import (
    DEFAULT_POLICY_CLASS,
    MAX_GPU_SPEED,
    MIN_GPU_SPEED,
    GpuType,
    Model,
    PlanMetrics,
    StrictNum,
    heuristic_problem,
    id_problem,
    location_problem,
    policy_class_problem,
)

CLUSTER_LOOP_WORKFLOW = "ClusterLoopWorkflow"
CLUSTER_STATUS_QUERY = "status"
"""ClusterLoopWorkflow's query: ClusterLoopStatus (the registration, counters, decision history)."""
CLUSTER_WORKFLOW_PREFIX = "cluster-"
CLUSTER_PROBE_WORKFLOW = "ClusterProbeWorkflow"
"""Reads a cluster once, before the app registers it (reachability)."""
DEFAULT_CLUSTER_FALLBACK = "easy:edf+fastest"
"""The heuristic a cluster is planned with while nothing is deployed for its class."""


def cluster_workflow_id(name: str) -> str:
    """One loop per registered cluster, under a well-known id."""
    return f"{CLUSTER_WORKFLOW_PREFIX}{name}"


ClusterMode = Literal["advise", "enforce"]
NodeState = Literal["idle", "mixed", "allocated", "drain", "down"]


class ClusterSettings(Model):
    """What registering a cluster says: where its controller is, the class whose deployed
    policy plans for it, how often and in which mode. The API's ClusterCreate and the
    loop's ClusterConfig both extend it, so a field and its rules are written once."""

    name: str = Field(min_length=1, max_length=100)
    kind: Literal["slurm"] = "slurm"
    endpoint: str = Field(
        min_length=1,
        max_length=1000,
        description="Slurm: the absolute path of the slurm.conf the worker's Slurm clients use "
        "(munge authenticates them; the worker's user must be a Slurm operator to enforce).",
    )
    policy_class: str = Field(DEFAULT_POLICY_CLASS, description="Plans use the policy deployed for it.")
    interval_s: StrictNum = Field(30.0, ge=1, le=86_400)
    mode: ClusterMode = "advise"
    partition: str | None = Field(None, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if (problem := id_problem(name, "cluster name")) is not None:
            raise ValueError(problem)
        return name

    @field_validator("endpoint")
    @classmethod
    def _conf_path(cls, endpoint: str) -> str:
        problem = location_problem(endpoint, "endpoint")
        if problem is None and not endpoint.startswith("/"):
            problem = f"endpoint {endpoint[:100]!r} must be the absolute path of a slurm.conf"
        if problem is not None:
            raise ValueError(problem)
        return endpoint

    @field_validator("policy_class")
    @classmethod
    def _known_class(cls, name: str) -> str:
        if (problem := policy_class_problem(name)) is not None:
            raise ValueError(problem)
        return name


class ClusterConfig(ClusterSettings):
    """A registered cluster as its loop runs it: the registration plus the loop's own tuning."""

    fallback: str = Field(DEFAULT_CLUSTER_FALLBACK, description="Heuristic used while nothing is deployed.")
    lease_s: StrictNum | None = Field(
        None,
        ge=1,
        le=86_400,
        description="How long a deferred job is kept from starting by itself (`enforce`); "
        "null = 3 intervals. "
        "If the service stops, Slurm schedules the job itself once the lease runs out.",
    )
    gpu_speed: dict[GpuType, StrictNum] = Field(
        default_factory=dict, description="Relative speed of GRES GPU types other than p5 and p4."
    )
    window: int = Field(32, ge=1, le=256)
    step_attempts: int = Field(
        4, ge=1, le=20, description="Attempts of each step (read, plan, apply) per tick."
    )
    ticks_per_run: int = Field(200, ge=1, le=5_000, description="Ticks before continue-as-new.")
    decisions_kept: int = Field(100, ge=1, le=1_000, description="Ticks whose record the status query keeps.")

    @field_validator("fallback")
    @classmethod
    def _known_fallback(cls, name: str) -> str:
        if (problem := heuristic_problem(name, "fallback")) is not None:
            raise ValueError(problem)
        return name

    @field_validator("gpu_speed")
    @classmethod
    def _speeds(cls, speeds: dict[str, float]) -> dict[str, float]:
        for gpu_type, speed in speeds.items():
            if not MIN_GPU_SPEED <= speed <= MAX_GPU_SPEED:
                raise ValueError(
                    f"gpu_speed[{gpu_type!r}] must be between {MIN_GPU_SPEED} and {MAX_GPU_SPEED}"
                )
        return speeds

    @property
    def lease(self) -> float:
        return self.lease_s if self.lease_s is not None else 3 * self.interval_s


class ClusterNode(Model):
    """A node as the controller reports it: totals and what is free now."""

    name: str
    state: NodeState
    slurm_state: str
    """The controller's own words (`idle`, `mixed+DRAIN`...), for the decision history."""
    cpus: int
    free_cpus: int
    memory_gb: float
    free_memory_gb: float
    gpus: dict[str, int] = Field(default_factory=dict)
    free_gpus: dict[str, int] = Field(default_factory=dict)

    @property
    def takes_jobs(self) -> bool:
        return self.state in ("idle", "mixed")


class JobRequest(Model):
    """What a job asks for; two reads of a job compare equal when nothing a plan used changed."""

    cpus: int
    memory_gb: float
    gpus: int = 0
    gpu_types: list[str] | None = None
    """Allowed GPU types; None = any (or no GPU)."""
    time_limit_s: float
    """The runtime estimate the plan uses: `estimate=<seconds>` in the job's comment, capped
    at the time limit; else the time limit."""
    partition: str


class ClusterJob(Model):
    id: str
    state: Literal["pending", "running"]
    request: JobRequest
    slurm_priority: int
    plan_priority: int = Field(2, ge=1, le=3)
    """The job's weight in the plan's score: `priority=1..3` in the job's comment, else 2."""
    submit_time: float
    """Seconds since the epoch."""
    deadline: float | None = None
    """Seconds since the epoch: `--deadline`, else `deadline=` in the job's comment."""
    nodes: list[str] = Field(default_factory=list)
    """Running: where."""
    lease_until: float | None = None
    """Pending: deferred by an `enforce` tick until then (its BeginTime)."""
    pinned_node: str | None = None
    """Pending: the node an `enforce` tick required for it."""
    mark: str | None = None
    """The admin comment an `enforce` tick left on it (`rlsched:action=...,tick=...`)."""


class SkippedJob(Model):
    job_id: str
    reason: str


class ClusterSnapshot(Model):
    """One read of the controller."""

    cluster: str
    read_at: float
    """Seconds since the epoch on the worker's clock."""
    nodes: list[ClusterNode]
    jobs: list[ClusterJob]
    skipped: list[SkippedJob] = Field(default_factory=list)
    """Jobs the plan's model cannot express (heterogeneous, multi-node, big arrays, unknown GRES...)."""
    notes: list[str] = Field(default_factory=list)
    top_other_priority: int = 0
    """The highest Slurm priority among pending jobs no tick has ordered (skipped ones too):
    an `enforce` tick orders its jobs above it."""

    @property
    def pending(self) -> list[ClusterJob]:
        return [j for j in self.jobs if j.state == "pending"]


class ClusterDecision(Model):
    """What the plan wants for one pending job: start now on `node`, or wait; `rank` is
    its place in the plan's order (0 first)."""

    job_id: str
    action: Literal["start", "defer"]
    rank: int
    node: str | None = None
    planned_start_s: float | None = None
    """Seconds after the read at which the plan starts it (None: the plan never does)."""


class ClusterPlan(Model):
    policy: str
    decisions: list[ClusterDecision]
    unplaced: list[SkippedJob] = Field(default_factory=list)
    metrics: PlanMetrics | None = None
    notes: list[str] = Field(default_factory=list)
    elapsed_ms: float = 0.0

    @model_validator(mode="after")
    def _start_has_node(self) -> ClusterPlan:
        for decision in self.decisions:
            if decision.action == "start" and not decision.node:
                raise ValueError(f"decision to start job {decision.job_id} names no node")
        return self


Outcome = Literal["applied", "advised", "unchanged", "skipped"]


class AppliedDecision(Model):
    job_id: str
    action: Literal["start", "defer"]
    node: str | None = None
    outcome: Outcome
    """`applied`: written to the controller; `advised`: `advise` mode, nothing written;
    `unchanged`: this tick had already written it (a retried apply); `skipped`: the job or
    node changed since the read (`reason` says how)."""
    reason: str = ""


class PlanClusterInput(Model):
    config: ClusterConfig
    snapshot: ClusterSnapshot


class ApplyClusterInput(Model):
    config: ClusterConfig
    snapshot: ClusterSnapshot
    plan: ClusterPlan
    tick_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$", max_length=300)
    """Written on every job this tick touches, so a retried apply recognises its own work."""


class TickRecord(Model):
    """One tick in the decision history."""

    tick: int
    at: datetime
    mode: ClusterMode
    policy: str | None = None
    nodes: int = 0
    pending: int = 0
    running: int = 0
    decisions: list[AppliedDecision] = Field(default_factory=list)
    skipped: list[SkippedJob] = Field(default_factory=list)
    unplaced: list[SkippedJob] = Field(default_factory=list)
    error: str | None = None
    """Why the tick failed after its retries (the loop goes on at the next interval)."""


class ClusterLoopState(Model):
    ticks: int = 0
    failed_ticks: int = 0
    failures_in_a_row: int = 0
    """Ticks failed since the last good one: the wait before the next grows with it."""
    history: list[TickRecord] = Field(default_factory=list)


class ClusterLoopInput(Model):
    config: ClusterConfig
    state: ClusterLoopState | None = None
    """Carried over continue-as-new; callers leave it empty."""


class ClusterLoopStatus(Model):
    config: ClusterConfig
    ticks: int
    failed_ticks: int
    history: list[TickRecord]


class ClusterProbeInput(Model):
    config: ClusterConfig
    timeout_s: StrictNum = Field(5.0, ge=0.5, le=60)
    """Bound on each Slurm command of the read: a stopped controller makes Slurm's own
    clients wait about 9 s before they give up."""


class ClusterProbe(Model):
    """One read of a cluster before it is registered: what it holds, or why it could not
    be read. `cause` is `endpoint` when the worker has no file at the endpoint, and
    `controller` when the controller did not answer, refused the worker, or took longer
    than the probe's timeout."""

    reachable: bool
    cause: Literal["endpoint", "controller"] | None = None
    detail: str | None = None
    nodes: int = 0
    pending: int = 0
    running: int = 0
    skipped: int = 0
    notes: list[str] = Field(default_factory=list)
