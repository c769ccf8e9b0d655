"""Tables of the app's index and the public schemas built on them.

Temporal is the source of truth for what a run does; these rows are what users query and
what survives an app restart. Per entity: `XBase` (shared fields), `XCreate` (input),
`X(table=True)` (the row), `XPublic` (output), `XsPublic{data, count}` (a page).
Payloads that cross Temporal are the contract models from worker/contracts.py, reused
here as field types so the API and the worker cannot drift apart.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator
from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field as DBField
from sqlmodel import SQLModel

from app.core.durations import format_duration, parse_duration
from app.errors import NUL_DETAIL
from worker.contracts import (
    DEFAULT_POLICY_CLASS,
    LABEL_PATTERN,
    MAX_JOBS,
    MAX_NODES,
    POLICY_CLASS_PATTERN,
    BaselineOut,
    EvaluationEvidence,
    IterationProgress,
    JobSpec,
    NodeSpec,
    PlacementOut,
    PlanMetrics,
    PolicyMetrics,
    RunStatus,
    StrictCount,
    StrictFlag,
    SyntheticSpec,
    TrainingRunSettings,
    UnplacedOut,
    gpu_types_problem,
    heuristic_problem,
    id_problem,
    path_like_problem,
    policy_class_problem,
    policy_name_problem,
)

TERMINAL_STATUSES: tuple[str, ...] = ("completed", "failed", "cancelled")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Input(BaseModel):
    """Request bodies reject unknown fields, so a typo is a 422 rather than ignored, and
    NUL characters anywhere in them: PostgreSQL cannot store them in text, and the same
    body must be accepted or refused whatever the database."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        if "\\u0000" not in json.dumps(data, default=str):  # C-speed fast path: 25 ms at 10,000 jobs
            return data
        if (where := _nul_path(data)) is not None:
            raise ValueError(f"{where or 'body'}: {NUL_DETAIL}")
        return data


def _nul_path(value: Any, path: str = "") -> str | None:
    """Where (dotted path) the first NUL character in a JSON value is, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return f"{path}.{key!r}".lstrip(".")
        if (found := _nul_path(item, f"{path}.{key}".lstrip("."))) is not None:
            return found
    return None


def _checked(problem: str | None, value: str) -> str:
    if problem is not None:
        raise ValueError(problem)
    return value


class Eligibility(BaseModel):
    """A round's (and its checkpoint's) deployability, derived from its stored `gain`:
    the PPO objective value minus the best heuristic's on the run's held-out evaluation."""

    gain: float

    @computed_field(description="PPO's objective value minus the best heuristic's on held-out seeds.")
    @property
    def margin(self) -> float:
        return self.gain

    @computed_field(description="True when the margin is > 0: PUT /policy deploys it without force.")
    @property
    def eligible(self) -> bool:
        return self.gain > 0


# --- training runs -----------------------------------------------------------------------


class TrainingRunCreate(Input, TrainingRunSettings):
    resume_from_checkpoint: str | None = Field(
        None, max_length=200, description="Start from this checkpoint id (GET /checkpoints)."
    )
    deploy: Literal["manual", "auto"] = Field(
        "manual",
        description="auto: each round's checkpoint is deployed for `deploy_class` when it is eligible "
        "and beats the deployed policy on the same held-out seeds.",
    )
    deploy_class: str | None = Field(
        None,
        pattern=POLICY_CLASS_PATTERN,
        description="The workload class auto-deploy targets; default: the workload's name.",
    )

    @field_validator("resume_from_checkpoint")
    @classmethod
    def _checkpoint_id(cls, value: str | None) -> str | None:
        return None if value is None else _checked(id_problem(value, "checkpoint id"), value)

    @field_validator("deploy_class")
    @classmethod
    def _policy_class(cls, value: str | None) -> str | None:
        return None if value is None else _checked(policy_class_problem(value), value)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "steady-16",
                    "workload": {"name": "steady", "nodes": 16, "load": 0.9, "window": 32},
                    "ppo": {"lr": 0.0005, "train_batch_size": 4096},
                    "iterations_per_round": 5,
                    "max_rounds": 3,
                }
            ]
        },
    )


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_created_at", "created_at"), Index("ix_runs_status", "status"))

    id: str = DBField(primary_key=True, max_length=64)
    name: str | None = DBField(default=None, max_length=200)
    workflow_id: str = DBField(max_length=200, unique=True)
    status: str = DBField(default="running", max_length=16)
    config: dict[str, Any] = DBField(sa_column=Column(JSON, nullable=False))
    idempotency_key: str | None = DBField(default=None, max_length=200, unique=True)
    request_hash: str | None = DBField(default=None, max_length=64)
    created_at: datetime = DBField(default_factory=utcnow)
    updated_at: datetime = DBField(default_factory=utcnow)
    finished_at: datetime | None = None
    rounds_done: int = 0
    current_round: int | None = None
    live_progress: dict[str, Any] | None = DBField(default=None, sa_column=Column(JSON))
    best_checkpoint_id: str | None = DBField(default=None, max_length=200)
    best_score: float | None = None
    latest_checkpoint_id: str | None = DBField(default=None, max_length=200)
    stop_reason: str | None = DBField(default=None, max_length=500)
    error: str | None = DBField(default=None, max_length=4000)
    synced_at: datetime | None = None
    schedule_id: str | None = DBField(default=None, max_length=64, index=True)


class RoundPublic(Eligibility):
    round: int
    checkpoint_id: str | None
    iteration: int
    env_steps: int
    episode_return_mean: float | None
    score: float
    best_heuristic: str
    best_heuristic_score: float
    gain: float = Field(description="PPO score minus the best heuristic's on the same episodes.")
    heuristic_scores: dict[str, float]
    finished_at: datetime | None


class Round(SQLModel, table=True):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("run_id", "round", name="uq_rounds_run_round"),)

    id: int | None = DBField(default=None, primary_key=True)
    run_id: str = DBField(foreign_key="runs.id", max_length=64, index=True)
    round: int
    checkpoint_id: str | None = DBField(default=None, max_length=200)
    iteration: int = 0
    env_steps: int = DBField(default=0, sa_type=BigInteger)
    episode_return_mean: float | None = None
    score: float = 0.0
    best_heuristic: str = ""
    best_heuristic_score: float = 0.0
    gain: float = 0.0
    heuristic_scores: dict[str, float] = DBField(default_factory=dict, sa_column=Column(JSON))
    finished_at: datetime | None = None


class IterationMetric(SQLModel, table=True):
    """One PPO iteration's learner metrics. Unique per (run, global iteration): the
    reconciler writes the live heartbeat's iterations and later the round's own list,
    each an upsert, so an iteration is stored once whoever sees it first."""

    __tablename__ = "iteration_metrics"
    __table_args__ = (UniqueConstraint("run_id", "iteration", name="uq_iteration_metrics_run_iteration"),)

    id: int | None = DBField(default=None, primary_key=True)
    run_id: str = DBField(foreign_key="runs.id", max_length=64, index=True)
    round: int
    iteration: int
    iterations_in_round: int = 0
    env_steps: int = 0
    env_steps_per_second: float | None = None
    episode_return_mean: float | None = None
    episode_score_mean: float | None = None
    policy_loss: float | None = None
    vf_loss: float | None = None
    entropy: float | None = None
    kl: float | None = None
    recorded_at: datetime = DBField(default_factory=utcnow)


class IterationMetricPublic(BaseModel):
    round: int
    iteration: int = Field(description="The policy's global PPO iteration (continues across rounds).")
    iterations_in_round: int
    env_steps: int
    env_steps_per_second: float | None
    episode_return_mean: float | None
    episode_score_mean: float | None
    policy_loss: float | None
    vf_loss: float | None
    entropy: float | None
    kl: float | None
    recorded_at: datetime


LeagueKind = Literal["ppo", "heuristic", "bound"]


class LeagueEntry(SQLModel, table=True):
    """One policy's value in one round's held-out evaluation: the PPO checkpoint, every
    heuristic of the league, and the empty-cluster bound, all on the same episodes."""

    __tablename__ = "league_entries"
    __table_args__ = (
        UniqueConstraint("run_id", "round", "policy", name="uq_league_entries_run_round_policy"),
        Index("ix_league_entries_workload", "workload"),
    )

    id: int | None = DBField(default=None, primary_key=True)
    run_id: str = DBField(foreign_key="runs.id", max_length=64, index=True)
    round: int
    workload: str = DBField(max_length=300)
    objective: str = DBField(default="deadline", max_length=32)
    policy: str = DBField(max_length=200)
    kind: str = DBField(max_length=16)
    value: float
    checkpoint_id: str | None = DBField(default=None, max_length=200)
    metrics: dict[str, Any] | None = DBField(default=None, sa_column=Column(JSON))


class LeagueEntryPublic(BaseModel):
    round: int
    workload: str = Field(
        description="The evaluation workload (a `:train` trace is evaluated on `:heldout`)."
    )
    objective: str
    policy: str = Field(description="`ppo`, a heuristic name, or `bound`.")
    kind: LeagueKind
    value: float = Field(description="The objective's value on the round's held-out episodes.")
    checkpoint_id: str | None
    metrics: PolicyMetrics | None


class RoundHistoryPublic(RoundPublic):
    bound: float | None = Field(None, description="Empty-cluster bound of the same episodes.")


MetricsSeries = Literal["iterations", "rounds", "league"]


class MetricsPage(BaseModel):
    run_id: str
    series: MetricsSeries
    count: int = Field(description="Rows in the whole series.")
    offset: int
    limit: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")


class IterationMetricsPage(MetricsPage):
    series: Literal["iterations"] = "iterations"
    data: list[IterationMetricPublic]


class RoundMetricsPage(MetricsPage):
    series: Literal["rounds"] = "rounds"
    data: list[RoundHistoryPublic]


class LeagueMetricsPage(MetricsPage):
    series: Literal["league"] = "league"
    data: list[LeagueEntryPublic]


class LiveProgress(BaseModel):
    """The current round's training, from the activity's last heartbeat."""

    round: int
    iterations_done: int = 0
    progress: IterationProgress | None = None


class TrainingRunPublic(BaseModel):
    id: str
    name: str | None
    workflow_id: str
    status: RunStatus
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    rounds_done: int
    current_round: int | None
    live_progress: LiveProgress | None
    best_checkpoint_id: str | None
    best_score: float | None
    latest_checkpoint_id: str | None
    stop_reason: str | None
    error: str | None
    schedule_id: str | None = Field(
        None, description="The training schedule that started this run; null for POST /training-runs."
    )


class TrainingRunDetail(TrainingRunPublic):
    rounds: list[RoundPublic]
    stale: bool = Field(
        False, description="True when Temporal could not be asked just now; fields are from the index."
    )


class TrainingRunsPublic(BaseModel):
    data: list[TrainingRunPublic]
    count: int


class StopBody(Input):
    reason: str | None = Field(None, max_length=500, pattern=LABEL_PATTERN)


class StopAccepted(BaseModel):
    id: str
    status: Literal["stopping"] = "stopping"
    rounds_done: int


# --- training schedules ------------------------------------------------------------------

OverlapPolicy = Literal["skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other", "allow_all"]
"""Temporal's ScheduleOverlapPolicy, by name: what a schedule does when its previous run is
still going."""

MIN_INTERVAL = timedelta(seconds=1)
"""Temporal refuses shorter intervals ("interval is too small")."""
MAX_DURATION = timedelta(days=3660)


class TrainingScheduleCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    every: str | None = Field(
        None,
        description="Start a run at this interval: whole numbers with units d, h, m, s "
        "(`30s`, `5m`, `1h30m`, `1d`). Give exactly one of `every` and `cron`.",
        max_length=50,
    )
    cron: str | None = Field(
        None,
        description="Start a run at the times of this 5-field cron expression (UTC), e.g. `0 3 * * *`, "
        "or a macro such as `@daily`.",
        max_length=200,
    )
    jitter: str | None = Field(
        None, max_length=50, description="Delay each start by a random duration up to this (`30s`)."
    )
    paused: bool = Field(False, description="Create it paused; POST .../unpause starts it.")
    overlap: OverlapPolicy = Field(
        "skip", description="When the previous run is still going: skip (default), buffer_one, ..."
    )
    run: TrainingRunCreate = Field(
        description="The body of POST /training-runs each fired run is started with."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "nightly-steady",
                    "cron": "0 3 * * *",
                    "run": {"workload": {"name": "steady", "nodes": 16}, "max_rounds": 3},
                }
            ]
        },
    )

    @field_validator("every")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is None:
            return None
        every = parse_duration(value)
        if not MIN_INTERVAL <= every <= MAX_DURATION:
            raise ValueError(f"{value!r}: the interval must be between 1s and {MAX_DURATION.days}d")
        return format_duration(every)

    @field_validator("jitter")
    @classmethod
    def _jitter(cls, value: str | None) -> str | None:
        if value is None:
            return None
        jitter = parse_duration(value)
        if jitter > MAX_DURATION:
            raise ValueError(f"{value!r}: jitter must be at most {MAX_DURATION.days}d")
        return format_duration(jitter)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(value.split())
        if not (value.startswith("@") or len(value.split()) == 5) or not croniter.is_valid(value):
            raise ValueError(
                f"{value!r} is not a cron expression: give 5 fields (minute hour day-of-month month "
                "day-of-week), e.g. '0 3 * * *', or a macro such as '@daily'"
            )
        return value

    @model_validator(mode="after")
    def _one_spec(self) -> TrainingScheduleCreate:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of `every` (an interval such as '30s') and `cron`")
        return self


class TrainingSchedule(SQLModel, table=True):
    """What the app needs to index the runs a schedule fires and to show its definition;
    its state (paused, next and recent actions) lives on Temporal only."""

    __tablename__ = "training_schedules"
    __table_args__ = (Index("ix_training_schedules_created_at", "created_at"),)

    id: str = DBField(primary_key=True, max_length=64)
    name: str = DBField(max_length=200)
    temporal_id: str = DBField(max_length=200, unique=True)
    every_s: int | None = None
    cron: str | None = DBField(default=None, max_length=200)
    jitter_s: int | None = None
    overlap: str = DBField(default="skip", max_length=32)
    run: dict[str, Any] = DBField(sa_column=Column(JSON, nullable=False))
    created_at: datetime = DBField(default_factory=utcnow)


class ScheduledRunPublic(BaseModel):
    run_id: str
    workflow_id: str
    scheduled_at: datetime | None = Field(None, description="The nominal time, jitter included.")
    started_at: datetime | None = None


class TrainingScheduleState(BaseModel):
    """Read from Temporal (describe) on every GET: Temporal is the source of truth."""

    paused: bool
    note: str | None = None
    next_action_times: list[datetime] = Field(description="The next (up to 10) times a run is due.")
    recent_actions: list[ScheduledRunPublic] = Field(
        description="The last (up to 10) runs started, oldest first."
    )
    running: list[ScheduledRunPublic] = Field(description="Runs this schedule started that are still going.")
    actions: int = Field(description="Runs started so far.")
    skipped_overlap: int = Field(description="Starts skipped because a previous run was still going.")


class TrainingSchedulePublic(BaseModel):
    id: str
    name: str
    temporal_schedule_id: str
    every: str | None
    cron: str | None
    jitter: str | None
    overlap: OverlapPolicy
    run: dict[str, Any] = Field(description="The POST /training-runs body of every fired run.")
    created_at: datetime
    state: TrainingScheduleState | None = Field(
        description="Temporal's view; null when Temporal could not be asked just now (`stale`)."
    )
    stale: bool = False


class TrainingSchedulesPublic(BaseModel):
    data: list[TrainingSchedulePublic]
    count: int


class ScheduleNoteBody(Input):
    note: str | None = Field(None, max_length=500, description="Shown as the schedule's note.")


class ScheduleTriggerBody(Input):
    overlap: OverlapPolicy = Field(
        "allow_all",
        description="allow_all (default) starts a run even while another is going; pass the "
        "schedule's own policy (e.g. skip) to respect it.",
    )


class ScheduleTriggered(BaseModel):
    id: str
    status: Literal["triggered"] = "triggered"
    overlap: OverlapPolicy


# --- checkpoints ---------------------------------------------------------------------------


class Checkpoint(SQLModel, table=True):
    __tablename__ = "checkpoints"
    __table_args__ = (
        Index("ix_checkpoints_score", "score"),
        Index("ix_checkpoints_created_at", "created_at"),
    )

    id: str = DBField(primary_key=True, max_length=200)
    run_id: str = DBField(foreign_key="runs.id", max_length=64, index=True)
    round: int
    location: str = DBField(max_length=2000)
    iteration: int = 0
    env_steps: int = DBField(default=0, sa_type=BigInteger)
    score: float = 0.0
    best_heuristic: str = ""
    best_heuristic_score: float = 0.0
    gain: float = 0.0
    heuristic_scores: dict[str, float] = DBField(default_factory=dict, sa_column=Column(JSON))
    metrics: dict[str, Any] | None = DBField(default=None, sa_column=Column(JSON))
    heuristics: list[dict[str, Any]] | None = DBField(default=None, sa_column=Column(JSON))
    window: int = 32
    created_at: datetime = DBField(default_factory=utcnow)


class CheckpointPublic(Eligibility):
    id: str
    run_id: str
    round: int
    location: str = Field(description="Where the worker stored it (path or URI).")
    iteration: int
    env_steps: int
    score: float
    best_heuristic: str
    best_heuristic_score: float
    gain: float
    heuristic_scores: dict[str, float]
    metrics: PolicyMetrics | None = Field(None, description="The PPO policy's evaluation metrics.")
    heuristics: list[PolicyMetrics] | None = Field(None, description="Heuristics on the same episodes.")
    window: int
    created_at: datetime


class CheckpointsPublic(BaseModel):
    data: list[CheckpointPublic]
    count: int


# --- schedule ------------------------------------------------------------------------------

_EXAMPLE_PLAN_BODY = {
    "nodes": [
        {"id": "node-a", "cpus": 64, "memory_gb": 512, "gpus": {"p5": 8}, "status": "OK"},
        {"id": "node-b", "cpus": 32, "gpus": {"p4": 4}, "status": "OK"},
    ],
    "jobs": [
        {
            "id": "train-llm",
            "cpus": 16,
            "gpus": 8,
            "gpu_types": ["p5"],
            "priority": 3,
            "runtime_estimate_s": 7200,
        },
        {"id": "eval", "cpus": 4, "gpus": 1, "priority": 2, "runtime_estimate_s": 600, "deadline_s": 1800},
    ],
    "policy": "best",
}


class ScheduleCreate(Input):
    nodes: list[NodeSpec] | None = Field(None, max_length=MAX_NODES)
    jobs: list[JobSpec] | None = Field(None, max_length=MAX_JOBS)
    synthetic: SyntheticSpec | None = None
    policy: str = Field(
        "best",
        min_length=1,
        max_length=200,
        description="'best' (the policy deployed for `class`, GET /policy; a heuristic fallback when "
        "none is), a checkpoint id, or a heuristic: fifo, sjf, edf, priority, packing, random, "
        "edf+fastest, easy:sjf+deadline, ...",
    )
    policy_class: str = Field(
        DEFAULT_POLICY_CLASS,
        alias="class",
        pattern=POLICY_CLASS_PATTERN,
        description="Workload class whose deployed policy 'best' means.",
    )
    baseline: str | None = Field(
        "edf",
        description="Heuristic whose plan is returned alongside for comparison; null skips it "
        "(the plan then costs about half).",
    )
    window: StrictCount | None = Field(None, ge=1, le=256, description="Jobs the policy sees per decision.")
    run_async: StrictFlag = Field(
        False, alias="async", description="Answer 202 at once; fetch GET /schedule/{id}."
    )

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, json_schema_extra={"examples": [_EXAMPLE_PLAN_BODY]}
    )

    @field_validator("policy")
    @classmethod
    def _policy_name(cls, name: str) -> str:
        return name if name == "best" else _checked(policy_name_problem(name), name)

    @field_validator("policy_class")
    @classmethod
    def _policy_class(cls, name: str) -> str:
        return _checked(policy_class_problem(name), name)

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleCreate:
        if self.synthetic is None and (self.nodes is None or self.jobs is None):
            raise ValueError("give either nodes and jobs, or synthetic")
        if self.synthetic is not None and (self.nodes or self.jobs):
            raise ValueError("give either nodes and jobs, or synthetic, not both")
        if self.nodes is not None and not self.nodes:
            raise ValueError("nodes: a plan needs at least one node")
        for kind, items in (("node", self.nodes or []), ("job", self.jobs or [])):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    raise ValueError(f"duplicate {kind} id {item.id!r}")
                seen.add(item.id)
        if (
            self.baseline is not None
            and (problem := heuristic_problem(self.baseline, "baseline")) is not None
        ):
            raise ValueError(problem)
        if (problem := gpu_types_problem(self.nodes, self.jobs)) is not None:
            raise ValueError(problem)
        return self


ScheduleStatus = Literal["running", "completed", "failed", "timed_out"]


class ScheduleRequest(SQLModel, table=True):
    __tablename__ = "schedule_requests"
    __table_args__ = (Index("ix_schedule_requests_created_at", "created_at"),)

    id: str = DBField(primary_key=True, max_length=64)
    workflow_id: str = DBField(max_length=200)
    status: str = DBField(default="running", max_length=16)
    requested_policy: str = DBField(max_length=200)
    policy: str = DBField(max_length=200)
    checkpoint_id: str | None = DBField(default=None, max_length=200)
    nodes: int = 0
    jobs: int = 0
    notes: list[str] = DBField(default_factory=list, sa_column=Column(JSON))
    result: dict[str, Any] | None = DBField(default=None, sa_column=Column(JSON))
    error: str | None = DBField(default=None, max_length=4000)
    elapsed_ms: float | None = None
    created_at: datetime = DBField(default_factory=utcnow)
    finished_at: datetime | None = None


class SchedulePublic(BaseModel):
    id: str
    workflow_id: str
    status: ScheduleStatus
    requested_policy: str
    policy: str = Field(description="The policy actually used: a heuristic name or a checkpoint id.")
    checkpoint_id: str | None = None
    notes: list[str] = Field(default_factory=list, description="E.g. why a heuristic stood in for 'best'.")
    placements: list[PlacementOut] = Field(default_factory=list)
    unplaced: list[UnplacedOut] = Field(default_factory=list)
    metrics: PlanMetrics | None = None
    baseline: BaselineOut | None = None
    error: str | None = None
    elapsed_ms: float | None = None
    created_at: datetime
    finished_at: datetime | None = None


# --- deployed policies ---------------------------------------------------------------------


class PolicyDeploy(Input):
    policy: str = Field(
        min_length=1,
        max_length=200,
        description="A checkpoint id (GET /checkpoints) or a heuristic name (edf, sjf+fastest, ...).",
    )
    force: StrictFlag = Field(False, description="Deploy a checkpoint that is not eligible (margin <= 0).")

    @field_validator("policy")
    @classmethod
    def _policy_name(cls, name: str) -> str:
        """A path or URI is a 422 here; an unknown name stays the 409 of the deployment."""
        return _checked(path_like_problem(name), name)

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"policy": "edf+fastest", "force": False}]}
    )


class PolicyPublic(BaseModel):
    policy_class: str
    policy: str = Field(description="The checkpoint id or heuristic 'best' serves for this class.")
    kind: Literal["checkpoint", "heuristic"]
    checkpoint_id: str | None = None
    eligible: bool
    margin: float | None = Field(None, description="Objective value minus the best heuristic's, held out.")
    forced: bool = Field(False, description="Deployed with force: true although not eligible.")
    source: Literal["operator", "auto"]
    deployed_at: datetime | None
    evidence: EvaluationEvidence | None = Field(
        None, description="The held-out evaluation: workload, objective, seed, episodes, league values."
    )


class PoliciesPublic(BaseModel):
    data: list[PolicyPublic]
    count: int
    fallback: str = Field(description="What 'best' serves for a class with nothing deployed.")


class PolicyDeployed(PolicyPublic):
    previous: PolicyPublic | None = None


# --- health ------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessCheck(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, ReadinessCheck]
