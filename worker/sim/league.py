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

from worker.sim.bound import empty_cluster_bound, gap_closed
from worker.sim.evaluate import episode_seeds, evaluate_policies
from worker.sim.heuristics import CLASSIC, STANDALONE, TUNED, all_compositions, make_heuristic
from worker.sim.heuristics.composed import ComposedHeuristic
from worker.sim.heuristics.tuned import TunedHeuristic, make_tuned
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


@dataclass(frozen=True, slots=True)
class LeagueRow:
    policy: str
    metrics: dict[str, float]
    kind: Literal["heuristic", "policy"]
    chose: str | None = None
    """For `tuned`: the composition it runs."""
    gap_closed: float | None = None

    def as_dict(self) -> dict:
        row: dict = {"policy": self.policy, "kind": self.kind, **self.metrics, "gap_closed": self.gap_closed}
        if self.chose is not None:
            row["chose"] = self.chose
        return row


@dataclass(frozen=True, slots=True)
class League:
    workload: str
    seed: int
    episodes: int
    bound: float
    rows: list[LeagueRow]
    """Best first (by score)."""
    best_heuristic: str
    best_heuristic_score: float
    skipped: list[str] = field(default_factory=list)
    """Heuristics that do not apply to this workload (e.g. deadline rules without deadlines)."""

    def row(self, policy: str) -> LeagueRow:
        return next(r for r in self.rows if r.policy == policy)

    def as_dict(self) -> dict:
        return {
            "workload": self.workload,
            "seed": self.seed,
            "episodes": self.episodes,
            "bound": self.bound,
            "best_heuristic": self.best_heuristic,
            "best_heuristic_score": self.best_heuristic_score,
            "skipped": self.skipped,
            "rows": [r.as_dict() for r in self.rows],
        }


def build_heuristics(names: list[str], spec: WorkloadSpec, window: int) -> tuple[list[Policy], list[str]]:
    """The named heuristics (with `tuned` resolved for `spec`), and those that do not apply."""
    has_deadlines = bool(np.isfinite([j.deadline_s for j in make_scenario(spec, 0).jobs]).any())
    policies: list[Policy] = []
    skipped: list[str] = []
    for name in dict.fromkeys(names):
        policy = make_tuned(spec, window) if name == TUNED else make_heuristic(name)
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
) -> League:
    """Every heuristic of the set and the given policies on the same episodes, best first."""
    names = heuristic_set(heuristics) if isinstance(heuristics, str) else list(heuristics)
    built, skipped = build_heuristics(names, spec, window)
    others = list(policies or [])
    if not built:
        raise ValueError("a league needs at least one heuristic that applies to the workload")
    results = evaluate_policies([*others, *built], spec, window, episodes, seed)
    seeds = episode_seeds(seed, episodes)
    bound = float(np.mean([empty_cluster_bound(make_scenario(spec, s)) for s in seeds]))
    other_names = {p.name for p in others}
    chose = {p.name: p.choice.choice for p in built if isinstance(p, TunedHeuristic)}
    heuristic_rows = [r for r in results if r.policy not in other_names]
    best = max(heuristic_rows, key=lambda r: r.metrics["score"])
    best_score = best.metrics["score"]
    rows = [
        LeagueRow(
            r.policy,
            r.metrics,
            "policy" if r.policy in other_names else "heuristic",
            chose.get(r.policy),
            gap_closed(r.metrics["score"], best_score, bound),
        )
        for r in results
    ]
    rows.sort(key=lambda r: -r.metrics["score"])
    return League(spec.name, seed, episodes, bound, rows, best.policy, best_score, skipped)
