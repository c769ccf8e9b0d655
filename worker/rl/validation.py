"""Training-side validation episodes: where a run may compare its own checkpoints.

Choosing between checkpoints (expert iteration's gate, a benchmark's choice of settings)
by their held-out evaluation would fit the choice to the episodes that judge it. These
episodes come from the workload's training split (`tuning_spec`: a held-out trace file is
never played) with seeds above every uint32 evaluation seed and above the PPO sampler's
range (worker/rl/config.py's TRAINING_SEED_OFFSET + [0, 2**31)), below the labelled
episodes' (worker/rl/labels.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.sim.heuristics import TUNED
from worker.sim.heuristics.tuned import tuning_spec
from worker.sim.league import run_league
from worker.sim.policy import Policy
from worker.sim.workloads import WorkloadSpec

VALIDATION_SEED_OFFSET = 2**32 + 2**31
FIRST_VALIDATION_SEED = 20_240_601
"""Where a run's validation episodes start, so every run and benchmark compares on the
same ones."""


def validation_seeds(episodes: int, first: int = FIRST_VALIDATION_SEED) -> list[int]:
    return [VALIDATION_SEED_OFFSET + first + i for i in range(episodes)]


@dataclass(frozen=True)
class ValidationScore:
    score: float
    """The policy's objective value (higher is better), mean over the episodes."""
    tuned_score: float
    """`tuned`'s on the same episodes: the yardstick the round curve is drawn against."""


def validate(
    policy: Policy, spec: WorkloadSpec, window: int, episodes: int, objective: str = "deadline"
) -> ValidationScore:
    """`policy` and `tuned` on `episodes` validation episodes of `spec`'s training split."""
    league = run_league(
        tuning_spec(spec), window, heuristics=[TUNED], policies=[policy], objective=objective,
        seeds=validation_seeds(episodes),
    )  # fmt: skip
    return ValidationScore(league.row(policy.name).value, league.best_heuristic_score)
