"""The search sees only what a scheduler knows: poisoning what it must not know (actual
runtimes, the failure process and its pending events, every job not yet submitted, the
scenario itself) changes none of its decisions."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from worker.contracts.search import SearchOptions
from worker.search.policy import SearchPolicy
from worker.sim.engine import ClusterSim
from worker.sim.env import SchedulingEnv
from worker.sim.heuristics import make_heuristic
from worker.sim.model import NodeFailures
from worker.sim.policy import DecisionView
from worker.sim.workloads import WorkloadSpec, make_scenario

SPEC = WorkloadSpec("deadline-tight", nodes=4, jobs=60, load=1.3)
BUDGET = 60_000.0
"""Never binding: with a binding budget, how far a search gets depends on the machine."""
FAILURES = NodeFailures(mean_time_to_failure_s=4 * 3600.0, mean_time_to_repair_s=900.0)


def poison(sim: ClusterSim, rng: np.random.Generator) -> None:
    """Change, in place, everything about the episode a scheduler cannot know now."""
    k = sim.next_arrival
    sim.runtime[:] = rng.uniform(1.0, 1e5, size=sim.runtime.shape)
    sim.events[:] = sorted(
        (time + rng.uniform(0, 5000.0), seq, kind, index, attempt)
        for time, seq, kind, index, attempt in sim.events
    )
    later = slice(k, sim.n_jobs)
    sim.submit[later] = sim.now + np.sort(rng.uniform(0, 1e4, size=sim.n_jobs - k))
    for name in ("estimate", "deadline", "priority", "cpu", "gpu", "mem"):
        values = getattr(sim, name)
        values[later] = rng.permutation(values[later])
    sim.rng = np.random.default_rng(int(rng.integers(2**31)))
    other = make_scenario(SPEC, int(rng.integers(2**31)))
    sim.scenario = dataclasses.replace(
        sim.scenario, jobs=other.jobs, failures=NodeFailures(60.0, 60.0), name=sim.scenario.name
    )


@pytest.mark.parametrize(
    "options",
    [
        SearchOptions(candidates=8, budget_ms=BUDGET),
        SearchOptions(candidates=6, futures="sampled", rollouts=2, horizon=15, z=0.0, budget_ms=BUDGET),
        SearchOptions(candidates=8, runtimes="sampled", rollouts=4, z=0.0, budget_ms=BUDGET),
        SearchOptions(candidates=8, runtimes="calibrated", budget_ms=BUDGET),
        SearchOptions(candidates=6, depth=1, portfolio=("sjf+fastest", "edf+first"), budget_ms=BUDGET),
        SearchOptions(candidates=8, depth=1, nodes_per_job=2, budget_ms=BUDGET),
        SearchOptions(
            candidates=6, depth=1, futures="sampled", arrivals=5, rollouts=2, z=0.0, budget_ms=BUDGET
        ),
    ],
    ids=[
        "futures-none",
        "futures-sampled",
        "runtimes-sampled",
        "runtimes-calibrated",
        "portfolio",
        "nodes-per-job",
        "arrivals",
    ],
)
def test_poisoned_runtimes_failures_and_arrivals_give_the_same_decisions(options: SearchOptions) -> None:
    scenario = dataclasses.replace(make_scenario(SPEC, 5), failures=FAILURES)
    search = SearchPolicy(make_heuristic("easy:fifo"), options, workload=SPEC)
    env = SchedulingEnv({"nodes": SPEC.nodes, "window": 8, "observe": False})
    env.load_scenario(scenario, 5)
    search.reset(5)
    rng = np.random.default_rng(0)
    compared = departures = 0
    done = False
    while not done:
        view = env.decision_view()
        if env.sim.n_running and rng.random() < 0.5:
            twin_sim, twin_search = copy.deepcopy((env.sim, search))
            poison(twin_sim, rng)
            twin_view = DecisionView(None, twin_sim, view.window, view.fits, view.speed)
            searched, changed = search.stats.searched, search.stats.changed
            action = search.act(view)
            assert twin_search.act(twin_view) == action
            compared += search.stats.searched - searched
            departures += search.stats.changed - changed
        else:
            action = search.act(view)
        _, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    assert compared >= 10, "the test must exercise decisions where candidates were compared"
    assert departures > 0, "the search should leave the base somewhere, or the test proves little"
