"""RLScheduler's Lublin-1 setting by name: one pool, 1,024-job sequences, no deadlines."""

from __future__ import annotations

import math

import pytest

from worker.sim.evaluate import run_episode
from worker.sim.heuristics import make_heuristic
from worker.sim.traces import LUBLIN_POOL, pool_scenario
from worker.sim.workloads import WorkloadSpec, make_scenario


def test_a_sequence_is_1024_consecutive_jobs_on_one_256_processor_pool() -> None:
    scenario = pool_scenario(1024)
    assert len(scenario.jobs) == 1024 and [n.cpus for n in scenario.nodes] == [256.0]
    assert all(math.isinf(j.deadline_s) and j.gpus == 0 for j in scenario.jobs)
    assert [j.submit_s for j in scenario.jobs] == sorted(j.submit_s for j in scenario.jobs)
    assert len(pool_scenario(9216).jobs) == 10_000 - 9216  # the trace's last, shorter sequence


def test_by_name_with_a_seed_and_only_as_one_pool() -> None:
    scenario = make_scenario(WorkloadSpec(LUBLIN_POOL, nodes=1, jobs=200), seed=3)
    assert len(scenario.jobs) == 200
    with pytest.raises(ValueError, match="one pool of 256 processors"):
        make_scenario(WorkloadSpec(LUBLIN_POOL, nodes=16, jobs=200), seed=3)


def test_backfilling_lowers_fcfs_slowdown_and_deadline_rules_refuse() -> None:
    scenario = pool_scenario(0, 150)
    slowdown = {
        name: run_episode(make_heuristic(name), scenario, 128, 0).metrics().mean_bounded_slowdown
        for name in ("strict:fifo", "easy:fifo")
    }
    assert slowdown["easy:fifo"] < slowdown["strict:fifo"]
    with pytest.raises(ValueError, match="need job deadlines"):
        run_episode(make_heuristic("edf"), scenario, 128, 0)
