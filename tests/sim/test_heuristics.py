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


def test_classic_names_are_greedy_first_fit_compositions() -> None:
    assert make_heuristic("edf").name == "edf"
    assert make_heuristic("edf+first").name == "edf"
    assert make_heuristic("easy:sjf+deadline").name == "easy:sjf+deadline"


@pytest.mark.parametrize(
    ("name", "says"),
    [("edf+closest", "placements: first, fastest"), ("lifo", "orders: fifo, sjf"),
     ("easy:", "malformed"), ("sjf+fastest+first", "malformed"), ("eager:sjf", "malformed")],
)  # fmt: skip
def test_bad_names_say_what_exists(name: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        make_heuristic(name)


def test_contract_names_match_the_simulator() -> None:
    from worker.contracts import HEURISTIC_ORDERS, HEURISTIC_PLACEMENTS
    from worker.sim.heuristics import ORDERS, PLACEMENTS

    assert tuple(ORDERS) == HEURISTIC_ORDERS
    assert tuple(PLACEMENTS) == HEURISTIC_PLACEMENTS


def decide(name: str, nodes: tuple[Node, ...], jobs: tuple[Job, ...], now: float = 0.0) -> tuple[str, str]:
    """(job, node) a heuristic starts first, or ("WAIT", "") if it holds back."""
    env = SchedulingEnv({"nodes": len(nodes), "window": len(jobs)})
    env.load_scenario(Scenario("h", nodes, jobs, 1e6))
    if jobs[0].id == "running":  # the backlog tests start it before anything else arrives
        env.step(0)
    while env.sim.now < now:
        env.step(env.decision_view().wait_action)
    view = env.decision_view()
    action = make_heuristic(name).act(view)
    if action == view.wait_action:
        return "WAIT", ""
    slot, node = divmod(action, len(nodes))
    return env.sim.job_ids[view.window[slot]], env.sim.node_ids[node]


P4_P5 = (Node("slow", 8, 0, {"p4": 8}, {"p4": 0.6}), Node("fast", 8, 0, {"p5": 8}, {"p5": 1.0}))


def test_fastest_takes_the_fast_gpu_and_first_does_not() -> None:
    jobs = (Job("j", 1, 1, 1, 0.0, 100, 100, 1e4),)
    assert decide("fifo", P4_P5, jobs) == ("j", "slow")
    assert decide("fifo+fastest", P4_P5, jobs) == ("j", "fast")


def test_deadline_placement_keeps_the_fast_gpu_for_jobs_that_need_it() -> None:
    loose = (Job("loose", 1, 1, 1, 0.0, 100, 100, 1e4),)
    tight = (Job("tight", 1, 1, 1, 0.0, 100, 100, 120),)
    assert decide("fifo+deadline", P4_P5, loose) == ("loose", "slow")
    assert decide("fifo+deadline", P4_P5, tight) == ("tight", "fast")


def test_laxity_sends_jobs_that_cannot_make_it_last() -> None:
    node = (Node("n", 8, 0, {"p5": 1}),)
    jobs = (Job("hopeless", 1, 1, 3, 0.0, 500, 500, 100), Job("tight", 1, 1, 1, 0.0, 100, 100, 300),
            Job("loose", 1, 1, 1, 0.0, 100, 100, 5000))  # fmt: skip
    assert decide("laxity", node, jobs)[0] == "tight"
    assert decide("edf", node, jobs)[0] == "hopeless"


# One 4-GPU node; a 2-GPU job runs until t=1000 (estimated), so a 4-GPU head job must wait.
BUSY = (Node("n", 16, 0, {"p5": 4}),)


def backlog(*extra: Job) -> tuple[Job, ...]:
    return (Job("running", 1, 2, 1, 0.0, 1000, 1000, 1e6), Job("head", 1, 4, 1, 1.0, 100, 100, 1e6), *extra)


def test_easy_backfills_only_jobs_that_cannot_delay_the_head_job() -> None:
    short = backlog(Job("short", 1, 2, 1, 2.0, 500, 500, 1e6))
    long = backlog(Job("long", 1, 2, 1, 2.0, 5000, 5000, 1e6))
    assert decide("easy:fifo", BUSY, short, now=2.0) == ("short", "n")
    assert decide("easy:fifo", BUSY, long, now=2.0) == ("WAIT", "")
    assert decide("fifo", BUSY, long, now=2.0) == ("long", "n")  # greedy jumps the queue
    assert decide("strict:fifo", BUSY, short, now=2.0) == ("WAIT", "")


def test_deadline_rules_refuse_a_workload_without_deadlines() -> None:
    from worker.sim.heuristics import HeuristicNotApplicable

    jobs = (Job("j", 1, 1, 1, 0.0, 100, 100, float("inf")),)
    with pytest.raises(HeuristicNotApplicable, match="need job deadlines"):
        decide("edf", P4_P5, jobs)
    assert decide("sjf+fastest", P4_P5, jobs) == ("j", "fast")


def test_every_composition_runs_and_finishes_every_job() -> None:
    from worker.sim.heuristics import all_compositions

    spec = WorkloadSpec("node-failures", nodes=4, jobs=40)
    names = all_compositions()
    results = evaluate_policies([make_heuristic(n) for n in names], spec, 8, 1, seed=3)
    for result in results:
        assert result.metrics["jobs_finished"] + result.metrics["unschedulable"] == 40, result.policy
