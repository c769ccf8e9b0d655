"""Training runs, their rounds, every PPO iteration's learner metrics and each round's league."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator
from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field as DBField
from sqlmodel import SQLModel

from app.models.base import Eligibility, Input, utcnow
from worker.contracts import (
    POLICY_CLASS_PATTERN,
    SEARCH_PREFIX,
    IterationProgress,
    PolicyMetrics,
    RunStatus,
    StopRequest,
    TrainingRunSettings,
    checked,
    id_problem,
    policy_class_problem,
)

TERMINAL_STATUSES: tuple[str, ...] = ("completed", "failed", "cancelled")


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
        return None if value is None else checked(id_problem(value, "checkpoint id"), value)

    @field_validator("deploy_class")
    @classmethod
    def _policy_class(cls, value: str | None) -> str | None:
        return None if value is None else checked(policy_class_problem(value), value)

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
    """A round side by side on its held-out episodes: the policy (`score`), its search
    (`search`, `search_score`), the best heuristic and the empty-cluster bound."""

    round: int
    checkpoint_id: str | None
    iteration: int
    env_steps: int
    episode_return_mean: float | None
    score: float
    best_heuristic: str
    best_heuristic_score: float
    heuristic_scores: dict[str, float]
    bound: float | None = Field(None, description="Empty-cluster bound of the same episodes.")
    search_score: float | None = Field(
        None,
        description="The search over this round's checkpoint on the same episodes (run setting "
        "`eval_search`); null when the round evaluated none.",
    )
    validation_score: float | None = Field(
        None,
        description="A gated distilling run's: the checkpoint's value on training-side validation "
        "episodes, what the gate compares (never the held-out `score`).",
    )
    accepted: bool | None = Field(
        None,
        description="Whether the gate kept this round's checkpoint as what the run builds on (the "
        "next round resumes from it and searches over it); null without a gate.",
    )
    finished_at: datetime | None

    @computed_field(description="The search row's policy, `search:<checkpoint id>` (null without one).")
    @property
    def search(self) -> str | None:
        if self.search_score is None or self.checkpoint_id is None:
            return None
        return f"{SEARCH_PREFIX}{self.checkpoint_id}"


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
    margin: float = 0.0
    heuristic_scores: dict[str, float] = DBField(default_factory=dict, sa_column=Column(JSON))
    bound: float | None = None
    search_score: float | None = None
    validation_score: float | None = None
    accepted: bool | None = None
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
    distill_cross_entropy: float | None = None
    distill_value_loss: float | None = None
    distill_agreement: float | None = None
    distill_episodes: int | None = None
    distill_decisions: int | None = None
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
    distill_cross_entropy: float | None = Field(
        None, description="A distilling run's imitation loss (cross-entropy to the search's targets)."
    )
    distill_value_loss: float | None = Field(None, description="Its value term (to the labelled returns).")
    distill_agreement: float | None = Field(
        None, description="Share of labelled decisions where the policy's choice is the search's."
    )
    distill_episodes: int | None = Field(None, description="Labelled episodes imitated in this round.")
    distill_decisions: int | None = Field(None, description="Labelled decisions among them.")
    recorded_at: datetime


LeagueKind = Literal["ppo", "search", "heuristic", "bound"]


class LeagueEntry(SQLModel, table=True):
    """One policy's value in one round's held-out evaluation: the PPO checkpoint, the
    search over it (when the run evaluates one), every heuristic of the league, and the
    empty-cluster bound, all on the same episodes."""

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
    policy: str = Field(description="`ppo`, `search:ppo` (the search over it), a heuristic name, or `bound`.")
    kind: LeagueKind
    value: float = Field(description="The objective's value on the round's held-out episodes.")
    checkpoint_id: str | None
    metrics: PolicyMetrics | None


class RoundHistoryPublic(RoundPublic):
    """A row of the `rounds` series: the round as GET /training-runs/{id} shows it."""


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


class StopBody(Input, StopRequest):
    """Why the run is stopped (optional); sent to the workflow as its StopRequest."""


class StopAccepted(BaseModel):
    id: str
    status: Literal["stopping"] = "stopping"
    rounds_done: int
