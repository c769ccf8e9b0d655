"""Payloads of a training run: its settings (shared by the API's request and the
workflow's input), rounds, heartbeats and progress."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from worker.contracts.evaluation import EvaluationResult, RoundSearch
from worker.contracts.ids import (
    LABEL_PATTERN,
    Model,
    Seed,
    StrictCount,
    StrictNum,
    checked,
    id_problem,
    location_problem,
)
from worker.contracts.metrics import IterationProgress
from worker.contracts.names import Objective
from worker.contracts.search import SearchOptions
from worker.contracts.workloads import PPOParams, WorkloadConfig


class TrainingRunSettings(Model):
    """What a user chooses about a training run: the body of POST /training-runs
    (app.models.TrainingRunCreate) and the workflow's input (TrainingRunConfig) both
    extend it, so a field or a bound is written once."""

    name: str | None = Field(None, max_length=200, pattern=LABEL_PATTERN)
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    objective: Objective = Field(
        "deadline",
        description="What the run optimises: deadline (the headline score), slowdown (mean bounded "
        "slowdown), utilization, allocation (GPU allocation ratio). Rounds rank by it, higher is better.",
    )
    ppo: PPOParams = Field(default_factory=PPOParams)
    iterations_per_round: StrictCount = Field(5, ge=1, le=10_000)
    max_rounds: StrictCount | None = Field(3, ge=1, le=100_000, description="null = until stopped.")
    eval_episodes: StrictCount = Field(5, ge=1, le=200)
    eval_search: RoundSearch = Field(
        default_factory=RoundSearch,
        description="A search over each round's checkpoint in the round's evaluation (same held-out "
        "episodes): on by default for a distilling run only.",
    )
    seed: Seed = 0

    def settings(self) -> dict[str, object]:
        """Just the shared settings (as field values), whatever model extends them."""
        return {name: getattr(self, name) for name in TrainingRunSettings.model_fields}

    def round_search(self) -> SearchOptions | None:
        """The options of the rounds' search row, or None when rounds evaluate without one."""
        enabled = self.eval_search.enabled
        if enabled is None:
            enabled = self.ppo.distill is not None
        return self.eval_search.options if enabled else None


class TrainingRunConfig(TrainingRunSettings):
    """Input of TrainingLoopWorkflow."""

    run_id: str = Field(
        description="Empty: derived from the workflow id (scheduled_run_id), as runs fired by a "
        "Temporal Schedule are, since one schedule action starts them all."
    )
    resume_from: str | None = Field(None, description="Checkpoint location to start from.")
    checkpoint_dir: str | None = Field(
        None, description="Where this run's checkpoints go; default <artifact store>/<run_id>."
    )
    checkpoint_every: StrictCount = Field(
        1, ge=1, le=10_000, description="Checkpoint (and heartbeat it) every this many iterations."
    )
    heartbeat_timeout_s: StrictNum = Field(
        120.0, ge=1, le=3600, description="A training attempt silent this long is retried elsewhere."
    )
    continue_as_new_every: StrictCount = Field(
        25, ge=1, le=10_000, description="Rounds per workflow run before continue-as-new."
    )
    state: TrainingProgress | None = Field(
        None, description="Set by the workflow itself on continue-as-new; callers leave it empty."
    )

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, run_id: str) -> str:
        return run_id if not run_id else checked(id_problem(run_id, "run_id"), run_id)

    @field_validator("resume_from", "checkpoint_dir")
    @classmethod
    def _safe_location(cls, location: str | None) -> str | None:
        return location if not location else checked(location_problem(location), location)


class ScenarioSummary(Model):
    """What generate_scenario found: the workload is valid and this is its shape."""

    workload: str
    seed: int
    nodes: int
    jobs: int
    gpus: dict[str, float] = Field(default_factory=dict)
    cpus: float = 0.0
    horizon_s: float = 0.0


HISTORY_PER_ROUND = 2_000
"""Iterations of one round carried in heartbeats and the round's output (the newest ones
when a round is longer): ~300 bytes each, well under Temporal's payload limits. The app
also stores every heartbeat's iterations as they arrive, so longer rounds lose none in
practice."""


def keep_history(history: list[IterationProgress]) -> list[IterationProgress]:
    return history[-HISTORY_PER_ROUND:]


class TrainingHeartbeat(Model):
    """Heartbeat details of the training activity: a retried attempt resumes from
    `checkpoint` instead of starting the round over."""

    round: int
    progress: IterationProgress | None = None
    checkpoint: str | None = None
    iterations_done: int = 0
    history: list[IterationProgress] = Field(default_factory=list)
    """Every iteration of this round so far (across attempts): the app indexes them live."""


class TrainRoundInput(Model):
    run_id: str
    round: int
    config: TrainingRunConfig
    resume_from: str | None = None
    output_dir: str
    labels: str | None = None
    """The round's search-labelled decisions (LabelRoundOutput.labels) when the run distils."""

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, run_id: str) -> str:
        return checked(id_problem(run_id, "run_id"), run_id)

    @field_validator("resume_from", "labels")
    @classmethod
    def _safe_resume(cls, location: str | None, info: ValidationInfo) -> str | None:
        return location if not location else checked(location_problem(location, info.field_name), location)

    @field_validator("output_dir")
    @classmethod
    def _safe_output(cls, location: str) -> str:
        return checked(location_problem(location, "output_dir"), location)


class LabelRoundInput(Model):
    """A distilling run's label step: `config.ppo.distill.episodes_per_round` training
    episodes played by `search` into `output_dir` (worker/activities/labels.py)."""

    run_id: str
    round: int
    config: TrainingRunConfig
    search: str
    """search:<base> for this round (the run's own, or over its latest checkpoint)."""
    output_dir: str

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, run_id: str) -> str:
        return checked(id_problem(run_id, "run_id"), run_id)

    @field_validator("output_dir")
    @classmethod
    def _safe_output(cls, location: str) -> str:
        return checked(location_problem(location, "output_dir"), location)


class LabelHeartbeat(Model):
    round: int
    episodes_done: int


class LabelRoundOutput(Model):
    labels: str
    """Directory (path or URI) holding the round's labels.parquet."""
    search: str
    episodes: int
    decisions: int
    elapsed_s: float


class TrainRoundOutput(Model):
    checkpoint: str
    iteration: int
    env_steps: int
    elapsed_s: float
    last: IterationProgress | None = None
    history: list[IterationProgress] = Field(default_factory=list)
    """Every iteration of the round, in order (see HISTORY_PER_ROUND)."""


class StoreCheckpointInput(Model):
    """A finished round's checkpoint (a path on the training worker) to record in the
    artifact store; `output_dir` is the location the round was trained into."""

    run_id: str
    round: int
    checkpoint: str
    output_dir: str
    summary: RoundSummary | None = None

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, run_id: str) -> str:
        return checked(id_problem(run_id, "run_id"), run_id)

    @field_validator("checkpoint", "output_dir")
    @classmethod
    def _safe_location(cls, location: str) -> str:
        return checked(location_problem(location), location)


class StoredCheckpoint(Model):
    checkpoint: str
    """Where the checkpoint now lives (a path, or a URI for a non-local artifact store)."""
    uploaded: bool = False


class RoundSummary(Model):
    round: int
    checkpoint: str
    iteration: int
    env_steps: int
    episode_return_mean: float | None = None
    score: float
    best_heuristic: str
    best_heuristic_score: float
    gain: float
    heuristic_scores: dict[str, float] = Field(default_factory=dict)
    bound: float | None = None
    """Empty-cluster bound of the round's held-out episodes (kept when `evaluation` is not)."""
    search_score: float | None = None
    """`search:<this round's checkpoint>`'s objective value on the same episodes, when the
    run evaluates a search row (kept when `evaluation` is not)."""
    evaluation: EvaluationResult | None = None
    finished_at: datetime | None = None
    iterations: list[IterationProgress] = Field(default_factory=list)
    """The round's per-iteration learner metrics; the workflow keeps them for its last
    rounds only (ITERATIONS_KEPT), by when the app has indexed them."""
    labels: LabelRoundOutput | None = None
    """A distilling run's label step: the search that labelled, where, and how much."""
    validation_score: float | None = None
    """A gated distilling run's: the checkpoint's objective value on training-side
    validation episodes (what the gate compares; never the held-out `score`)."""
    accepted: bool | None = None
    """Whether the gate kept this round's checkpoint as the run's current policy; None
    without a gate (every round is kept)."""


RunStatus = Literal["running", "stopping", "completed", "failed", "cancelled"]


class TrainingProgress(Model):
    """Answer of the `progress` query, and the carried-over state on continue-as-new."""

    run_id: str
    status: Literal["running", "stopping", "completed"] = "running"
    rounds_done: int = 0
    current_round: int | None = None
    rounds: list[RoundSummary] = Field(default_factory=list)
    best_checkpoint: str | None = None
    best_score: float | None = None
    latest_checkpoint: str | None = None
    current_checkpoint: str | None = None
    """What the next round resumes from and, in a distilling run, searches over: the latest
    checkpoint, or with a gate the last one it kept (None before the first round)."""
    current_validation: float | None = None
    """The current checkpoint's validation score, in a gated run."""
    stop_reason: str | None = None


class StopRequest(Model):
    reason: str | None = Field(None, max_length=500, pattern=LABEL_PATTERN)


class StopResult(Model):
    status: Literal["stopping"] = "stopping"
    rounds_done: int


class SmokeInput(Model):
    workload: WorkloadConfig = Field(
        default_factory=lambda: WorkloadConfig(name="seed-demo", nodes=4, window=8, jobs=40)
    )
    iterations: StrictCount = Field(1, ge=1, le=100)
    seed: Seed = 0
    output_dir: str | None = None
    ppo: PPOParams = Field(
        default_factory=lambda: PPOParams(
            train_batch_size=256, minibatch_size=128, num_epochs=1, num_envs_per_env_runner=4
        )
    )

    @field_validator("output_dir")
    @classmethod
    def _safe_location(cls, location: str | None) -> str | None:
        return None if location is None else checked(location_problem(location, "output_dir"), location)


class SmokeReport(Model):
    nodes: int
    jobs: int
    checkpoint: str
    iterations: int
    env_steps: int
    placed: int
    unplaced: int
    score: float
    baseline_score: float
    elapsed_s: float


TrainingRunConfig.model_rebuild()
StoreCheckpointInput.model_rebuild()
