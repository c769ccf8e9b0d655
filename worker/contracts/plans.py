"""Payloads of a plan: the cluster and jobs a client describes, the policy to plan with,
and the placements that come back."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from worker.contracts.ids import (
    LABEL_PATTERN,
    MAX_CPUS,
    MAX_GPU_SPEED,
    MAX_GPU_TYPES,
    MAX_GPUS,
    MAX_JOBS,
    MAX_MEMORY_GB,
    MAX_NODES,
    MAX_RUNTIME_S,
    MAX_TIME_S,
    MIN_CPUS,
    MIN_GPU_SPEED,
    MIN_GPUS,
    MIN_SECONDS,
    GpuType,
    Model,
    Seed,
    StrictCount,
    StrictNum,
    checked,
    id_problem,
    location_problem,
    policy_class_problem,
    search_problem,
)
from worker.contracts.metrics import PlanMetrics
from worker.contracts.names import SEARCH_PREFIX, heuristic_problem
from worker.contracts.search import SearchOptions
from worker.contracts.workloads import WorkloadConfig

KNOWN_GPU_SPEEDS = {"p5": 1.0, "p4": 0.6}
"""GPU types a node may name without giving `gpu_speed` for them."""


class NodeSpec(Model):
    """A node as a user describes a real cluster."""

    id: str = Field(min_length=1, max_length=200, pattern=LABEL_PATTERN)
    cpus: StrictNum = Field(ge=MIN_CPUS, le=MAX_CPUS)
    memory_gb: StrictNum = Field(0.0, ge=0, le=MAX_MEMORY_GB)
    gpus: dict[GpuType, StrictNum] = Field(
        default_factory=dict, max_length=MAX_GPU_TYPES, examples=[{"p5": 8}]
    )
    gpu_speed: dict[GpuType, StrictNum] | None = Field(None, max_length=MAX_GPU_TYPES, examples=[{"p5": 1.0}])
    status: Literal["OK", "BUSY", "DOWN"] = "OK"

    @model_validator(mode="after")
    def _gpus_valid(self) -> NodeSpec:
        for gpu_type, count in self.gpus.items():
            if not (count == 0 or MIN_GPUS <= count <= MAX_GPUS):
                raise ValueError(
                    f"node {self.id}: gpus[{gpu_type!r}] must be 0 or between {MIN_GPUS} and {MAX_GPUS}"
                )
            known = gpu_type in KNOWN_GPU_SPEEDS or gpu_type in (self.gpu_speed or {})
            if not known:
                raise ValueError(
                    f"node {self.id}: unknown GPU type {gpu_type!r}; known types are "
                    f"{', '.join(KNOWN_GPU_SPEEDS)}, or give its relative speed in gpu_speed"
                )
        for gpu_type, speed in (self.gpu_speed or {}).items():
            if not MIN_GPU_SPEED <= speed <= MAX_GPU_SPEED:
                raise ValueError(
                    f"node {self.id}: gpu_speed[{gpu_type!r}] must be between "
                    f"{MIN_GPU_SPEED} and {MAX_GPU_SPEED}"
                )
        return self


class JobSpec(Model):
    """A pending job; times are seconds from now."""

    id: str = Field(min_length=1, max_length=200, pattern=LABEL_PATTERN)
    cpus: StrictNum = Field(1.0, ge=MIN_CPUS, le=MAX_CPUS)
    memory_gb: StrictNum = Field(0.0, ge=0, le=MAX_MEMORY_GB)
    gpus: StrictNum = Field(0.0, ge=0, le=MAX_GPUS, description=f"0, or between {MIN_GPUS} and {MAX_GPUS}.")
    gpu_types: list[GpuType] | None = Field(
        None, max_length=MAX_GPU_TYPES, description="Allowed GPU types; null = any."
    )
    priority: StrictCount = Field(2, ge=1, le=3)
    runtime_estimate_s: StrictNum = Field(ge=MIN_SECONDS, le=MAX_RUNTIME_S)
    deadline_s: StrictNum | None = Field(None, ge=MIN_SECONDS, le=MAX_TIME_S)
    submit_s: StrictNum = Field(0.0, ge=0, le=MAX_TIME_S, description="Arrives this many seconds from now.")

    @field_validator("gpus")
    @classmethod
    def _whole_or_share(cls, gpus: float) -> float:
        if 0 < gpus < MIN_GPUS:
            raise ValueError(f"must be 0 or at least {MIN_GPUS} (a GPU share smaller than that is noise)")
        return gpus


class SyntheticSpec(Model):
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    seed: Seed = 0


def gpu_types_problem(nodes: list[NodeSpec] | None, jobs: list[JobSpec] | None) -> str | None:
    """Why a plan names too many distinct GPU types, or None."""
    types = {t for n in nodes or [] for t in (*n.gpus, *(n.gpu_speed or {}))}
    types |= {t for j in jobs or [] for t in j.gpu_types or []}
    if len(types) > MAX_GPU_TYPES:
        return f"a plan may name at most {MAX_GPU_TYPES} distinct GPU types; this one names {len(types)}"
    return None


class PolicyRef(Model):
    """The policy a plan uses, as the worker needs it: a checkpoint location or a name;
    or `search`: `search:<heuristic, tuned or checkpoint id>`, a checkpoint base's location
    in `checkpoint` (the options are PlanInput.search);
    or `deployed`: whatever the scheduler service workflow has deployed for class `name`
    when the plan runs (resolved there, so a deployment and the plans around it are
    ordered by the workflow itself), `fallback` when nothing is deployed."""

    kind: Literal["checkpoint", "heuristic", "deployed", "search"]
    name: str
    checkpoint: str | None = None
    fallback: str | None = None
    keep_window: bool = False
    """deployed only: the request chose its window; otherwise a deployed checkpoint's
    training window is used."""

    @model_validator(mode="after")
    def _safe_names(self) -> PolicyRef:
        if self.kind == "checkpoint":
            checked(id_problem(self.name, "checkpoint id"), self.name)
        elif self.kind == "deployed":
            checked(policy_class_problem(self.name), self.name)
        elif self.kind == "search":
            checked(search_problem(self.name), self.name)
        if self.checkpoint:  # an empty one is plan_input_problem's to answer
            checked(location_problem(self.checkpoint, "checkpoint"), self.checkpoint)
        return self


class PlanSource(Model):
    """Where a plan's cluster and jobs come from: given (nodes and jobs) or drawn
    (synthetic). The API's request (app.models.PlanCreate) and the workflow's input
    (PlanInput) both extend it, so the bounds, unique ids and the one-source rule are
    written once."""

    nodes: list[NodeSpec] | None = Field(None, max_length=MAX_NODES)
    jobs: list[JobSpec] | None = Field(None, max_length=MAX_JOBS)
    synthetic: SyntheticSpec | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PlanSource:
        if self.synthetic is None and (self.nodes is None or self.jobs is None):
            raise ValueError("give either nodes and jobs, or synthetic")
        if self.synthetic is not None and (self.nodes or self.jobs):
            raise ValueError("give either nodes and jobs, or synthetic, not both")
        for kind, items in (("node", self.nodes or []), ("job", self.jobs or [])):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    raise ValueError(f"duplicate {kind} id {item.id!r}")
                seen.add(item.id)
        if (problem := gpu_types_problem(self.nodes, self.jobs)) is not None:
            raise ValueError(problem)
        return self


class PlanInput(PlanSource):
    """Input of SchedulerWorkflow (and of the plan activity)."""

    policy: PolicyRef
    baseline: str | None = "edf"
    """Heuristic planned alongside for comparison; None skips it (half the plan's cost)."""
    window: StrictCount = Field(32, ge=1, le=256)
    timeout_s: StrictNum | None = Field(None, ge=0.01, le=3600)
    """How long the caller waits (the API's RLSCHED_SCHEDULE_TIMEOUT_S): the worker gives up
    on the plan after this long instead of computing an answer nobody reads."""
    search: SearchOptions | None = None
    """A `search` policy's options (None: the defaults)."""


def search_needs_no_checkpoint(name: str) -> bool:
    """Whether `search:<base>`'s base is `tuned` or a heuristic (else a checkpoint id)."""
    base = name.removeprefix(SEARCH_PREFIX)
    return base == "tuned" or heuristic_problem(base) is None


def plan_search_problem(policy: str, search: SearchOptions | None, synthetic: bool) -> str | None:
    """Why a plan's search options do not go with its policy, or None: the API's request
    and the worker's input refuse the same things."""
    if search is None:
        return None
    if not policy.startswith(SEARCH_PREFIX):
        return f"search: options are for a search policy (search:<base>), not {policy[:100]!r}"
    if search.futures == "sampled" and not synthetic:
        return "search: futures 'sampled' needs a synthetic workload to sample arrivals from"
    return None


def plan_input_problem(input: PlanInput) -> str | None:
    """Why a PlanInput that passed its own validation still cannot be planned (unknown
    baseline or heuristic, a checkpoint policy without a location), or None. Pure and
    cheap, so the service workflow's update validator can reject such input before
    anything is written to history; the plan activity raises the same messages."""
    if input.baseline is not None and (problem := heuristic_problem(input.baseline, "baseline")) is not None:
        return problem
    if input.policy.kind == "heuristic" and (problem := heuristic_problem(input.policy.name)) is not None:
        return problem
    fallback = input.policy.fallback if input.policy.kind == "deployed" else None
    if fallback is not None and (problem := heuristic_problem(fallback)) is not None:
        return f"fallback: {problem}"
    name = input.policy.name if input.policy.kind != "deployed" else ""
    if (problem := plan_search_problem(name, input.search, input.synthetic is not None)) is not None:
        return problem
    if input.policy.kind == "search" and not input.policy.checkpoint and not search_needs_no_checkpoint(name):
        return f"policy {input.policy.name!r} searches over a checkpoint but names no checkpoint"
    if input.policy.kind == "checkpoint" and not input.policy.checkpoint:
        return f"policy {input.policy.name!r} is a checkpoint policy but names no checkpoint"
    return None


class PlacementOut(Model):
    job_id: str
    node_id: str
    gpu_type: str | None
    start_s: float
    finish_s: float
    meets_deadline: bool
    priority: int | None = None
    """The job's priority (1-3), so a plan can be drawn without its request."""


class UnplacedOut(Model):
    job_id: str
    reason: str


class BaselineOut(Model):
    policy: str
    metrics: PlanMetrics


class PlanOutput(Model):
    policy: str
    checkpoint: str | None = None
    placements: list[PlacementOut]
    unplaced: list[UnplacedOut]
    metrics: PlanMetrics
    baseline: BaselineOut | None = None
    elapsed_ms: float = 0.0
    policy_id: str | None = None
    """For a `deployed` request: the checkpoint id or heuristic the workflow chose."""
    notes: list[str] = Field(default_factory=list)
