"""A checkpoint, or any policy (a search), against the heuristics on the same held-out episodes (no Ray).

The PPO row and every heuristic are rolled out by worker.sim.league on identical
scenarios and failure draws, so the gain is the policy's, not the dice's; "best
heuristic" is the best of the league's standard set, `tuned` included. Callers pick
an evaluation `seed` whose episodes training never drew (the training loop uses a
separate seed stream; traces have a held-out split).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from worker.rl.inference import PPOPolicy, load_module
from worker.sim.evaluate import PolicyResult
from worker.sim.league import STANDARD, run_league
from worker.sim.policy import Policy
from worker.sim.workloads import WorkloadSpec

PPO_NAME = "ppo"


@dataclass(frozen=True)
class EvaluationReport:
    results: list[PolicyResult]
    """The evaluated policy's row (a checkpoint's is "ppo") first, then each heuristic;
    metrics averaged over episodes."""
    best_heuristic: str
    best_heuristic_score: float
    gain: float
    """PPO score minus the best heuristic's (absolute, in score units)."""
    relative_gain: float
    """gain / best heuristic score (0 if that score is 0)."""
    episodes: int = 0
    seed: int = 0
    workload: str = ""
    bound: float | None = None
    """Mean empty-cluster bound of the episodes (worker.sim.bound)."""
    gap_closed: float | None = None
    """Share of the gap between the best heuristic and the bound the policy closes."""
    tuned_choice: str | None = None
    objective: str = "deadline"
    ppo_value: float | None = None
    """The evaluated policy's objective value (PPO's for a checkpoint); best_heuristic_score,
    gain and bound are in its units."""
    heuristic_values: dict[str, float] = field(default_factory=dict)

    @property
    def ppo(self) -> dict[str, float]:
        return self.results[0].metrics

    @property
    def ppo_score(self) -> float:
        return self.ppo["score"]

    @property
    def heuristics(self) -> list[PolicyResult]:
        return self.results[1:]


def evaluate(
    checkpoint: str,
    spec: WorkloadSpec,
    window: int,
    episodes: int,
    seed: int,
    heuristics: list[str] | None = None,
    objective: str = "deadline",
) -> EvaluationReport:
    """Score the checkpoint's greedy policy against the named heuristics (default the
    league's standard set, `tuned` included) and the empty-cluster bound.
    Raises CheckpointError for a bad checkpoint, ValueError for unknown names."""
    ppo = PPOPolicy(load_module(checkpoint), PPO_NAME)
    return evaluate_against_league(ppo, spec, window, episodes, seed, heuristics, objective)


def evaluate_against_league(
    policy: Policy,
    spec: WorkloadSpec,
    window: int,
    episodes: int,
    seed: int,
    heuristics: list[str] | None = None,
    objective: str = "deadline",
) -> EvaluationReport:
    """Any policy (a checkpoint's, a search) against the named heuristics on the same
    episodes: what deciding a deployment needs. Its row is the report's first."""
    names = list(STANDARD) if heuristics is None else list(heuristics)
    if not names:
        raise ValueError("evaluate needs at least one heuristic to compare against")
    if policy.name in names:
        raise ValueError(f"{policy.name!r} is the evaluated policy's row, not a heuristic")
    league = run_league(spec, window, episodes, seed, names, [policy], objective)
    by_name = {r.policy: PolicyResult(r.policy, r.metrics) for r in league.rows}
    ordered = [by_name[policy.name], *(by_name[r.policy] for r in league.rows if r.kind == "heuristic")]
    best_score = league.best_heuristic_score
    value = league.row(policy.name).value
    gain = value - best_score
    return EvaluationReport(
        results=ordered,
        best_heuristic=league.best_heuristic,
        best_heuristic_score=best_score,
        gain=gain,
        relative_gain=gain / abs(best_score) if best_score else 0.0,
        episodes=episodes,
        seed=seed,
        workload=spec.name,
        bound=league.bound,
        gap_closed=league.row(policy.name).gap_closed,
        tuned_choice=next((r.chose for r in league.rows if r.chose), None),
        objective=objective,
        ppo_value=value,
        heuristic_values={r.policy: r.value for r in league.rows if r.kind == "heuristic"},
    )
