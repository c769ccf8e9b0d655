"""The yardstick: the empty-cluster bound, `tuned` and the league."""

from __future__ import annotations

import pytest

from worker.sim.bound import empty_cluster_bound
from worker.sim.evaluate import episode_seeds, evaluate_policies
from worker.sim.heuristics import make_heuristic
from worker.sim.heuristics.tuned import TUNING_SEED_OFFSET, tuning_spec
from worker.sim.league import run_league
from worker.sim.workloads import WorkloadSpec, make_scenario


@pytest.mark.parametrize("workload", ["steady", "deadline-tight", "node-failures"])
def test_no_heuristic_beats_the_empty_cluster_bound(workload: str) -> None:
    spec = WorkloadSpec(workload, nodes=4, jobs=60)
    names = ["edf+fastest", "easy:laxity+deadline", "random", "packing"]
    for seed in episode_seeds(11, 3):
        bound = empty_cluster_bound(make_scenario(spec, seed))
        results = evaluate_policies([make_heuristic(n) for n in names], spec, 8, 0, 0, seeds=[seed])
        for result in results:
            assert result.metrics["score"] <= bound + 1e-9, result.policy


def test_tuning_never_looks_at_held_out_traces_or_seeds() -> None:
    for held_out in ("trace:alibaba-default:heldout", "trace:alibaba-gpuspec33", "trace:alibaba-multigpu50"):
        assert tuning_spec(WorkloadSpec(held_out)).name == "trace:alibaba-default:train"
    assert tuning_spec(WorkloadSpec("steady")).name == "steady"
    assert all(s < 2**32 for s in episode_seeds(0, 50))  # evaluation seeds are 32-bit
    assert TUNING_SEED_OFFSET >= 2**32


def test_league_ranks_best_first_with_tuned_and_the_bound() -> None:
    spec = WorkloadSpec("seed-demo", nodes=4, jobs=30)
    league = run_league(spec, window=8, episodes=2, seed=5, heuristics=["fifo", "edf+fastest", "tuned"])
    as_json = league.as_dict()
    assert {"workload", "seed", "episodes", "bound", "rows"} <= set(as_json)
    scores = [row["score"] for row in as_json["rows"]]
    assert scores == sorted(scores, reverse=True)
    tuned = league.row("tuned")
    assert tuned.chose is not None and make_heuristic(tuned.chose)
    assert league.best_heuristic_score == max(scores)
    assert league.bound >= max(scores)
    assert league.row(league.best_heuristic).gap_closed in (None, 0.0)
