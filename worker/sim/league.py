"""A league: heuristics, `tuned`, any other policies and the bound on the same episodes.

This is the yardstick every claim about a learned policy is measured with: the best
heuristic is the best of the whole set (including `tuned`, chosen on training seeds),
and the empty-cluster bound says how much was left to win.

Two sets of heuristics:
- `all`: every order x placement x mode, `packing`, `random` and `tuned` (about 130
  rows; `rlsched league`'s default, minutes on a large workload);
- `standard`: the classic six, each of fifo/sjf/edf/priority/laxity/sgt with the
  `fastest` and `deadline` placements, EASY sjf/edf/laxity on the fastest GPU, and
  `tuned`. Training rounds use it: seconds instead of minutes, and `tuned` is already the
  grid's best on training seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from worker.contracts import SEARCH_PREFIX
from worker.sim.bound import gap_closed
from worker.sim.evaluate import episode_seeds, evaluate_policies
from worker.sim.heuristics import CLASSIC, STANDALONE, TUNED, all_compositions, make_heuristic
from worker.sim.heuristics.composed import ComposedHeuristic
from worker.sim.heuristics.tuned import TunedHeuristic, make_tuned
from worker.sim.objectives import get_objective
from worker.sim.policy import Policy
from worker.sim.workloads import WorkloadSpec, make_scenario

HeuristicSet = Literal["all", "standard"]

STANDARD: tuple[str, ...] = (
    *CLASSIC,
    *(
        f"{o}+{p}"
        for o in ("fifo", "sjf", "edf", "priority", "laxity", "sgt")
        for p in ("fastest", "deadline")
    ),
    "easy:sjf+fastest",
    "easy:edf+fastest",
    "easy:laxity+fastest",
    TUNED,
)


def heuristic_set(which: HeuristicSet) -> list[str]:
    if which == "standard":
        return list(STANDARD)
    return [*all_compositions(), *STANDALONE, TUNED]


RowKind = Literal["heuristic", "policy", "search"]
"""`search` rows (`search:<base>`) are never the best heuristic, whatever their base."""


@dataclass(frozen=True, slots=True)
class LeagueRow:
    policy: str
    metrics: dict[str, float]
    kind: RowKind
    value: float
    """The objective's value (higher is better; the score for `deadline`)."""
    chose: str | None = None
    """For `tuned`: the composition it runs."""
    gap_closed: float | None = None
    ms_per_decision: float = 0.0
    """Wall-clock milliseconds per decision of the policy itself (not the env's step)."""

    def as_dict(self) -> dict:
        row: dict = {
            "policy": self.policy,
            "kind": self.kind,
            "objective_value": self.value,
            **self.metrics,
            "gap_closed": self.gap_closed,
            "ms_per_decision": round(self.ms_per_decision, 4),
        }
        if self.chose is not None:
            row["chose"] = self.chose
        return row


@dataclass(frozen=True, slots=True)
class League:
    workload: str
    seed: int
    episodes: int
    bound: float | None
    """Mean bound of the objective over the episodes (None where none is known)."""
    rows: list[LeagueRow]
    """Best first (by the objective's value)."""
    best_heuristic: str
    best_heuristic_score: float
    skipped: list[str] = field(default_factory=list)
    """Heuristics that do not apply to this workload (e.g. deadline rules without deadlines)."""
    objective: str = "deadline"

    def row(self, policy: str) -> LeagueRow:
        return next(r for r in self.rows if r.policy == policy)

    def as_dict(self) -> dict:
        return {
            "workload": self.workload,
            "objective": self.objective,
            "seed": self.seed,
            "episodes": self.episodes,
            "bound": self.bound,
            "best_heuristic": self.best_heuristic,
            "best_heuristic_score": self.best_heuristic_score,
            "skipped": self.skipped,
            "rows": [r.as_dict() for r in self.rows],
        }


def build_heuristics(
    names: list[str], spec: WorkloadSpec, window: int, objective: str = "deadline"
) -> tuple[list[Policy], list[str]]:
    """The named heuristics (with `tuned` resolved for `spec`), and those that do not apply.
    `search:<name>` is resolved above the simulator (worker/search/resolve.py)."""
    has_deadlines = bool(np.isfinite([j.deadline_s for j in make_scenario(spec, 0).jobs]).any())
    policies: list[Policy] = []
    skipped: list[str] = []
    for name in dict.fromkeys(names):
        policy = make_tuned(spec, window, objective) if name == TUNED else make_heuristic(name)
        needs_deadlines = isinstance(policy, ComposedHeuristic) and (
            policy.order.needs_deadlines or policy.placement.needs_deadlines
        )
        if needs_deadlines and not has_deadlines:
            skipped.append(name)
            continue
        policies.append(policy)
    return policies, skipped


def run_league(
    spec: WorkloadSpec,
    window: int = 32,
    episodes: int = 10,
    seed: int = 0,
    heuristics: HeuristicSet | list[str] = "all",
    policies: list[Policy] | None = None,
    objective: str = "deadline",
    seeds: list[int] | None = None,
) -> League:
    """Every heuristic of the set and the given policies on the same episodes, best first
    by the objective's value; `seeds` overrides the episode seeds derived from `seed`."""
    goal = get_objective(objective)
    names = heuristic_set(heuristics) if isinstance(heuristics, str) else list(heuristics)
    built, skipped = build_heuristics(names, spec, window, objective)
    others = list(policies or [])
    if not built:
        raise ValueError("a league needs at least one heuristic that applies to the workload")
    seeds = episode_seeds(seed, episodes) if seeds is None else seeds
    results = evaluate_policies([*others, *built], spec, window, episodes, seed, seeds=seeds)
    bounds = [goal.bound(make_scenario(spec, s)) for s in seeds]
    bound = None if any(b is None for b in bounds) else float(np.mean(bounds))
    other_names = {p.name for p in others}
    chose = {p.name: p.choice.choice for p in built if isinstance(p, TunedHeuristic)}

    def kind(name: str) -> RowKind:
        if name.startswith(SEARCH_PREFIX):
            return "search"
        return "policy" if name in other_names else "heuristic"

    heuristic_rows = [r for r in results if kind(r.policy) == "heuristic"]
    if not heuristic_rows:
        raise ValueError("a league needs at least one heuristic that applies to the workload")
    best = max(heuristic_rows, key=lambda r: goal.value(r.metrics))
    best_value = goal.value(best.metrics)
    rows = [
        LeagueRow(
            r.policy,
            r.metrics,
            kind(r.policy),
            goal.value(r.metrics),
            chose.get(r.policy),
            None if bound is None else gap_closed(goal.value(r.metrics), best_value, bound),
            r.ms_per_decision,
        )
        for r in results
    ]
    rows.sort(key=lambda r: -r.value)
    return League(spec.name, seed, episodes, bound, rows, best.policy, best_value, skipped, objective)
