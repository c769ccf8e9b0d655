from __future__ import annotations

import pytest

from worker.sim.env import SchedulingEnv
from worker.sim.evaluate import evaluate_policies
from worker.sim.heuristics import HEURISTICS, make_heuristic
from worker.sim.model import Job, Node, Scenario
from worker.sim.workloads import WorkloadSpec


def first_choice(policy_name: str) -> str:
    """Which job a heuristic starts first when only one of three fits at a time."""
    nodes = (Node("n", 4, 0, {"p5": 1}),)
    jobs = (
        Job("old-long-lowprio", 4, 1, 1, 0.0, 900, 900, 5000),
        Job("short", 4, 1, 2, 1.0, 100, 100, 9000),
        Job("urgent-highprio", 4, 1, 3, 2.0, 500, 500, 1000),
    )
    env = SchedulingEnv({"nodes": 1, "window": 3})
    env.load_scenario(Scenario("h", nodes, jobs, 1e6))
    env.step(3)  # wait until all three have arrived
    env.step(3)
    view = env.decision_view()
    action = make_heuristic(policy_name).act(view)
    return env.sim.job_ids[view.window[action // 1]]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("fifo", "old-long-lowprio"), ("sjf", "short"), ("edf", "urgent-highprio"),
     ("priority", "urgent-highprio")],
)  # fmt: skip
def test_ordering_heuristics_pick_by_their_rule(name: str, expected: str) -> None:
    assert first_choice(name) == expected


def test_packing_prefers_the_node_it_fills_best() -> None:
    nodes = (Node("roomy", 64, 0, {"p5": 8}), Node("snug", 8, 0, {"p5": 2}))
    jobs = (Job("j", 8, 2, 1, 0.0, 10, 10, 100),)
    env = SchedulingEnv({"nodes": 2, "window": 1})
    env.load_scenario(Scenario("p", nodes, jobs, 1e6))
    assert make_heuristic("packing").act(env.decision_view()) == 1


def test_every_heuristic_only_takes_valid_actions_and_finishes() -> None:
    spec = WorkloadSpec("seed-demo", nodes=4, jobs=80)
    results = evaluate_policies([make_heuristic(n) for n in HEURISTICS], spec, 8, 2, seed=5)
    assert [r.policy for r in results] == list(HEURISTICS)
    for result in results:
        assert result.metrics["jobs_finished"] + result.metrics["unschedulable"] == 80
        assert 0 < result.metrics["score"] <= 1


def test_random_is_seeded() -> None:
    spec = WorkloadSpec("steady", nodes=4, jobs=60)
    runs = [evaluate_policies([make_heuristic("random")], spec, 8, 2, seed=1) for _ in range(2)]
    assert runs[0] == runs[1]


def test_unknown_heuristic_lists_choices() -> None:
    with pytest.raises(ValueError, match="fifo"):
        make_heuristic("lottery")
