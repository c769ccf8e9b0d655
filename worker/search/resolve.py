"""`search:<name>` into a policy, above the simulator: the league resolves heuristics and
`tuned`, this module wraps them in searches, so the simulator never imports the search."""

from __future__ import annotations

from collections.abc import Iterable

from worker.contracts import SEARCH_PREFIX
from worker.contracts.search import SearchOptions
from worker.search.policy import SearchPolicy
from worker.sim.league import build_heuristics
from worker.sim.policy import Policy
from worker.sim.workloads import WorkloadSpec


def search_policies(
    names: Iterable[str],
    spec: WorkloadSpec,
    window: int,
    objective: str = "deadline",
    options: SearchOptions | None = None,
) -> tuple[list[Policy], list[str]]:
    """Searches over heuristics or `tuned` (`search:search:<name>` nests them), and the
    names whose base does not apply to the workload (a deadline rule without deadlines)."""
    policies: list[Policy] = []
    skipped: list[str] = []
    for name in dict.fromkeys(names):
        base_name, depth = name, 0
        while base_name.startswith(SEARCH_PREFIX):
            base_name, depth = base_name.removeprefix(SEARCH_PREFIX), depth + 1
        built, left_out = build_heuristics([base_name], spec, window, objective)
        if left_out:
            skipped.append(name)
            continue
        policy = built[0]
        for _ in range(depth):
            policy = SearchPolicy(policy, options, workload=spec)
        policies.append(policy)
    return policies, skipped
