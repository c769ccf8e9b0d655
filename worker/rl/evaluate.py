"""A checkpoint, or any policy (a search), against the heuristics on the same held-out episodes (no Ray).

The PPO row and every heuristic are rolled out by worker.sim.league on identical
scenarios and failure draws, so the gain is the policy's, not the dice's; "best
heuristic" is the best of the league's standard set, `tuned` included. Callers pick
an evaluation `seed` whose episodes training never drew (the training loop uses a
separate seed stream; traces have a held-out split). With `search` options, a search
over the same checkpoint (`search:ppo`: its top pairs by logit are the candidates, it
plays the rollouts) joins them: how far the policy is from its own search.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from worker.contracts.search import SearchOptions
from worker.rl.inference import PPOPolicy, load_module
from worker.search.policy import SearchPolicy
from worker.sim.evaluate import PolicyResult
from worker.sim.league import STANDARD, run_league
from worker.sim.policy import Policy
from worker.sim.workloads import WorkloadSpec

PPO_NAME = "ppo"
SEARCH_NAME = f"search:{PPO_NAME}"


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
    search: PolicyResult | None = None
    """The search over the checkpoint (`SEARCH_NAME`), when asked for."""
    search_value: float | None = None
    search_gap_closed: float | None = None
    search_ms_per_decision: float | None = None

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
    search: SearchOptions | None = None,
) -> EvaluationReport:
    """Score the checkpoint's greedy policy against the named heuristics (default the
    league's standard set, `tuned` included) and the empty-cluster bound, and with
    `search` options the search over it too (rollouts scored by `objective`).
    Raises CheckpointError for a bad checkpoint, ValueError for unknown names."""
    ppo = PPOPolicy(load_module(checkpoint), PPO_NAME)
    beside: list[Policy] = []
    if search is not None:
        beside.append(SearchPolicy(ppo, search, workload=spec, env_options={"objective": objective}))
    return evaluate_against_league(ppo, spec, window, episodes, seed, heuristics, objective, beside)


def evaluate_against_league(
    policy: Policy,
    spec: WorkloadSpec,
    window: int,
    episodes: int,
    seed: int,
    heuristics: list[str] | None = None,
    objective: str = "deadline",
    beside: list[Policy] | None = None,
) -> EvaluationReport:
    """Any policy (a checkpoint's, a search) against the named heuristics on the same
    episodes: what deciding a deployment needs. Its row is the report's first; `beside`
    (at most one: the search over the policy) is reported as the search row."""
    names = list(STANDARD) if heuristics is None else list(heuristics)
    if not names:
        raise ValueError("evaluate needs at least one heuristic to compare against")
    if policy.name in names:
        raise ValueError(f"{policy.name!r} is the evaluated policy's row, not a heuristic")
    companions = list(beside or [])
    league = run_league(spec, window, episodes, seed, names, [policy, *companions], objective)
    by_name = {r.policy: PolicyResult(r.policy, r.metrics, r.ms_per_decision) for r in league.rows}
    searched = league.row(companions[0].name) if companions else None
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
        search=by_name[searched.policy] if searched else None,
        search_value=searched.value if searched else None,
        search_gap_closed=searched.gap_closed if searched else None,
        search_ms_per_decision=searched.ms_per_decision if searched else None,
    )
