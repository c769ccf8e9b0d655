"""A round's held-out evaluation: which episodes (seed and workload, apart from the
training ones), whether a search over the round's checkpoint joins them, and what comes
back (the policy's, its search's and every heuristic's metrics)."""

from __future__ import annotations

from pydantic import Field, field_validator

from worker.contracts.ids import Model, Seed, StrictCount, checked, location_problem
from worker.contracts.metrics import PolicyMetrics
from worker.contracts.names import Objective
from worker.contracts.search import SearchOptions
from worker.contracts.workloads import WorkloadConfig

EVAL_SEED_OFFSET = 1_000_000_007


def evaluation_seed(run_seed: int) -> int:
    """The held-out evaluation seed of every round of a run (so rounds compare), derived
    apart from the training seeds; the app needs it for a checkpoint's evidence."""
    return (run_seed + EVAL_SEED_OFFSET) % (2**31 - 1)


def evaluation_workload(workload: WorkloadConfig) -> WorkloadConfig:
    """A `trace:NAME:train` workload is evaluated on `trace:NAME:heldout`."""
    if workload.name.startswith("trace:") and workload.name.endswith(":train"):
        return workload.model_copy(update={"name": workload.name.removesuffix(":train") + ":heldout"})
    return workload


ROUND_SEARCH_OPTIONS = SearchOptions(depth=1)
"""A round's search row by default: one level (about 15 ms a decision over a checkpoint on
`steady` with 16 nodes, a 400-job episode in ~7 s; depth 2 spends its whole 200 ms budget)."""


class RoundSearch(Model):
    """The search row of a round's held-out evaluation: `search:<the round's checkpoint>`
    on the same episodes as the policy, so a run shows how far its policy is from its own
    search (what expert iteration labels the next round with)."""

    enabled: bool | None = Field(
        None, strict=True, description="null: on for a distilling run (ppo.distill), off otherwise."
    )
    options: SearchOptions = Field(
        default_factory=lambda: ROUND_SEARCH_OPTIONS,
        description="The search's options; those left out take the search's defaults except "
        "`depth`, 1 here, so the row costs a fraction of a distilling round's label step.",
    )

    @field_validator("options", mode="before")
    @classmethod
    def _round_defaults(cls, options: object) -> object:
        if isinstance(options, dict):
            return {"depth": ROUND_SEARCH_OPTIONS.depth, **options}
        return options


class CheckpointInput(Model):
    """An activity input naming a checkpoint: a path or store URI, never one escaping the store."""

    checkpoint: str

    @field_validator("checkpoint")
    @classmethod
    def _safe_location(cls, location: str) -> str:
        return checked(location_problem(location, "checkpoint"), location)


class EvaluateInput(CheckpointInput):
    workload: WorkloadConfig
    episodes: StrictCount = Field(5, ge=1, le=1_000)
    seed: Seed = 0
    objective: Objective = "deadline"
    search: SearchOptions | None = None
    """Also evaluate `search:<checkpoint>` with these options; None: no search row."""


class ValidateInput(CheckpointInput):
    """Input of validate_policy: a checkpoint on its run's training-side validation
    episodes (worker/rl/validation.py), never the held-out ones its round is judged on."""

    workload: WorkloadConfig
    """The run's own (training) workload; its training split is played."""
    episodes: StrictCount = Field(8, ge=1, le=1_000)
    objective: Objective = "deadline"


class ValidationResult(Model):
    score: float
    """The checkpoint's objective value on the validation episodes."""
    tuned_score: float
    """`tuned`'s on the same episodes."""
    episodes: int


class EvaluationResult(Model):
    ppo: PolicyMetrics
    heuristics: list[PolicyMetrics]
    best_heuristic: str
    best_heuristic_score: float
    gain: float
    """PPO score minus the best heuristic's score on the same episodes."""
    bound: float | None = None
    """Empty-cluster bound of the same episodes: what no scheduler can beat."""
    gap_closed: float | None = None
    """Share of the gap between the best heuristic and the bound that PPO closes."""
    tuned_choice: str | None = None
    """What the `tuned` heuristic ran (chosen on training seeds)."""
    objective: Objective = "deadline"
    ppo_value: float | None = None
    """PPO's objective value (higher is better); `best_heuristic_score`, `gain` and `bound`
    are in the same units. For `deadline` it is the score."""
    heuristic_values: dict[str, float] = Field(default_factory=dict)
    search: PolicyMetrics | None = None
    """`search:<checkpoint>` on the same episodes, when the evaluation asked for it."""
    search_value: float | None = None
    """Its objective value, in the units of `ppo_value`."""
    search_gap_closed: float | None = None
    search_ms_per_decision: float | None = None
