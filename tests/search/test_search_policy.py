"""search:<base> as a policy: never worse than its base when the belief is the truth,
deterministic for a seed, and within its time budget (anytime)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.contracts.search import SearchOptions
from worker.search import policy as search_module
from worker.search import rollout as rollout_module
from worker.search.policy import SearchPolicy
from worker.search.rollout import RolloutEnv
from worker.sim.env import SchedulingEnv
from worker.sim.evaluate import run_episode
from worker.sim.heuristics import make_heuristic
from worker.sim.model import Job, Node, Scenario
from worker.sim.objectives import get_objective
from worker.sim.workloads import WorkloadSpec, make_scenario

BASES = [
    "fifo",
    "edf+fastest",
    "sjf+deadline",
    "easy:edf+fastest",
    "strict:laxity+fastest",
    "packing",
    "sgt+bestfit",
]
WINDOW = 4


@st.composite
def plans(draw: st.DrawFn) -> Scenario:
    """A plan: a small cluster and jobs all known now (submitted at 0), runtimes equal to
    their estimates, no failures: a belief with no future arrivals is the truth."""
    nodes = tuple(
        Node(
            f"n{i}",
            float(draw(st.sampled_from([8, 16, 32]))),
            64.0,
            {(gpu_type := draw(st.sampled_from(["p5", "p4"]))): float(draw(st.integers(1, 4)))},
            {gpu_type: 1.0 if gpu_type == "p5" else 0.6},
        )
        for i in range(draw(st.integers(1, 3)))
    )
    jobs = []
    for i in range(draw(st.integers(2, 9))):
        estimate = float(draw(st.integers(10, 1000)))
        jobs.append(
            Job(
                f"j{i}",
                float(draw(st.integers(1, 8))),
                draw(st.sampled_from([0.0, 0.5, 1.0, 2.0])),
                draw(st.integers(1, 3)),
                0.0,
                estimate,
                estimate,
                estimate * draw(st.floats(1.0, 4.0)),
                float(draw(st.integers(0, 16))),
                draw(st.sampled_from([(), ("p5",)])),
            )
        )
    return Scenario("plan", nodes, tuple(jobs), 1e7)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans(), st.sampled_from(BASES), st.sampled_from(["deadline", "slowdown"]))
def test_on_a_plan_the_search_is_never_worse_than_its_base(
    scenario: Scenario, base: str, objective: str
) -> None:
    goal = get_objective(objective)
    options = SearchOptions(candidates=64, budget_ms=60_000)
    env_options = {"objective": objective}
    plain = run_episode(make_heuristic(base), scenario, WINDOW, 0, env_options)
    search = SearchPolicy(make_heuristic(base), options)
    searched = run_episode(search, scenario, WINDOW, 0, env_options)
    assert search.stats.out_of_time == 0
    base_value = goal.value(plain.metrics().as_dict())
    assert goal.value(searched.metrics().as_dict()) >= base_value - 1e-9


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans(), st.sampled_from(BASES[:3]), st.lists(st.sampled_from(BASES[:4]), min_size=1, max_size=3))
def test_on_a_plan_a_portfolio_search_is_never_worse_than_any_of_its_heuristics(
    scenario: Scenario, base: str, portfolio: list[str]
) -> None:
    """Rollout with multiple heuristics: with no margin to pay, the search follows the best
    continuation it knows, and every heuristic's own one is among them."""
    options = SearchOptions(candidates=64, budget_ms=60_000, margin=0.0, depth=1, portfolio=tuple(portfolio))
    search = SearchPolicy(make_heuristic(base), options)
    searched = run_episode(search, scenario, WINDOW, 0).metrics().score
    assert search.stats.out_of_time == 0
    for name in {base, *portfolio}:
        assert searched >= run_episode(make_heuristic(name), scenario, WINDOW, 0).metrics().score - 1e-9


def test_the_search_improves_on_its_base_where_the_base_errs() -> None:
    """Two jobs, one fast and one slow GPU: fifo+first puts the tight job on the slow GPU."""
    nodes = (Node("slow", 8, 64, {"p4": 1}, {"p4": 0.6}), Node("fast", 8, 64, {"p5": 1}))
    jobs = (Job("tight", 1, 1, 3, 0.0, 100.0, 100.0, 110.0), Job("loose", 1, 1, 1, 0.0, 100.0, 100.0, 1e5))
    scenario = Scenario("plan", nodes, jobs, 1e7)
    assert run_episode(make_heuristic("fifo"), scenario, 2, 0).metrics().score == 0.25
    for depth in (1, 2):
        search = SearchPolicy(make_heuristic("fifo"), SearchOptions(depth=depth))
        assert run_episode(search, scenario, 2, 0).metrics().score == 1.0
    assert search.base.stats.changed >= 1  # the inner search (depth 1) left fifo's choice


def pods(*shapes: tuple[float, float]) -> tuple[Job, ...]:
    """Pods of FGD's experiment (never leaving), all pending now: (cpus, GPUs) each."""
    return tuple(
        Job(f"p{i}", cpus, gpus, 1, 0.0, 1e15, 1e15, math.inf) for i, (cpus, gpus) in enumerate(shapes)
    )


def test_a_placement_only_search_puts_a_pod_where_fgd_would_strand_the_next() -> None:
    """FGD fills the 2-GPU node with the 2-GPU pod; the 4-cpu pod then fits nowhere."""
    nodes = (Node("n0", 4.0, 0, {"V100M32": 2.0}), Node("n1", 4.0, 0, {"V100M32": 3.0}))
    scenario = Scenario("plan", nodes, pods((1.0, 2.0), (2.0, 0.5), (4.0, 0.5)), 10.0, placement_only=True)
    env_options = {"objective": "allocation"}
    fgd = run_episode(make_heuristic("fifo+fgd"), scenario, 1, 0, env_options).metrics()
    assert fgd.gpu_allocated == 0.5
    for nodes_per_job, allocated in ((1, 0.5), (2, 0.6)):
        search = SearchPolicy(
            make_heuristic("fifo+fgd"), SearchOptions(nodes_per_job=nodes_per_job, margin=0.0)
        )
        assert run_episode(search, scenario, 1, 0, env_options).metrics().gpu_allocated == allocated


@st.composite
def placement_plans(draw: st.DrawFn) -> Scenario:
    """FGD's experiment in small: a few nodes, pods that never leave, all pending now."""
    nodes = tuple(
        Node(
            f"n{i}", float(draw(st.sampled_from([4, 8, 16]))), 0, {"V100M32": float(draw(st.integers(1, 3)))}
        )
        for i in range(draw(st.integers(1, 3)))
    )
    shapes = draw(
        st.lists(
            st.tuples(st.sampled_from([1.0, 2.0, 4.0]), st.sampled_from([0.0, 0.5, 1.0, 2.0])),
            min_size=2,
            max_size=6,
        )
    )
    return Scenario("plan", nodes, pods(*shapes), 10.0, placement_only=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(placement_plans(), st.sampled_from(["fifo+fgd", "fifo+bestfit", "sjf+first"]), st.sampled_from([1, 2]))
def test_on_a_placement_only_plan_the_search_is_never_worse_than_its_base(
    scenario: Scenario, base: str, window: int
) -> None:
    env_options = {"objective": "allocation"}
    plain = run_episode(make_heuristic(base), scenario, window, 0, env_options).metrics()
    search = SearchPolicy(
        make_heuristic(base), SearchOptions(nodes_per_job=3, candidates=64, budget_ms=60_000)
    )
    searched = run_episode(search, scenario, window, 0, env_options).metrics()
    assert searched.gpu_allocated >= plain.gpu_allocated - 1e-9


def test_a_decision_the_base_settles_at_the_ceiling_is_the_one_a_full_search_makes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = WorkloadSpec("deadline-tight", nodes=4, jobs=40)
    scenario = make_scenario(spec, 4)
    options = SearchOptions(depth=1, margin=0.0, budget_ms=60_000)
    pruned = SearchPolicy(make_heuristic("sjf+fastest"), options)
    settled = actions_of(pruned, scenario, 4)
    monkeypatch.setattr(rollout_module, "ceiling_of", lambda belief: None)
    full = SearchPolicy(make_heuristic("sjf+fastest"), options)
    assert actions_of(full, scenario, 4) == settled
    assert pruned.stats.at_ceiling > 0 == full.stats.at_ceiling
    assert pruned.stats.candidates < full.stats.candidates


def actions_of(search: SearchPolicy, scenario: Scenario, seed: int) -> tuple[list[int], dict]:
    env = SchedulingEnv({"nodes": len(scenario.nodes), "window": 8, "observe": False})
    env.load_scenario(scenario, seed)
    search.reset(seed)
    actions, done = [], False
    while not done:
        actions.append(search.act(env.decision_view()))
        _, _, terminated, truncated, _ = env.step(actions[-1])
        done = terminated or truncated
    return actions, env.metrics().as_dict()


@pytest.mark.parametrize(
    "options",
    [
        SearchOptions(budget_ms=60_000),
        SearchOptions(futures="sampled", rollouts=3, horizon=10, z=0.5, budget_ms=60_000),
        SearchOptions(runtimes="sampled", rollouts=3, z=0.5, budget_ms=60_000),
    ],
    ids=["futures-none", "futures-sampled", "runtimes-sampled"],
)
def test_the_search_is_deterministic_for_a_seed(options: SearchOptions) -> None:
    spec = WorkloadSpec("deadline-tight", nodes=4, jobs=40)
    scenario = make_scenario(spec, 3)
    first = actions_of(SearchPolicy(make_heuristic("sjf+fastest"), options, spec), scenario, 3)
    second = actions_of(SearchPolicy(make_heuristic("sjf+fastest"), options, spec), scenario, 3)
    assert first == second


def fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The search's clock stands still except that each rollout takes one millisecond."""
    now = [0.0]
    value = RolloutEnv.value

    def one_ms_rollout(self: RolloutEnv, *args: object) -> float:
        now[0] += 0.001
        return value(self, *args)

    monkeypatch.setattr(search_module, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    monkeypatch.setattr(RolloutEnv, "value", one_ms_rollout)


def test_a_budget_for_a_single_rollout_plays_the_base(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_clock(monkeypatch)
    scenario = make_scenario(WorkloadSpec("deadline-tight", nodes=4, jobs=40), 2)
    base = run_episode(make_heuristic("fifo"), scenario, 8, 2)
    search = SearchPolicy(make_heuristic("fifo"), SearchOptions(budget_ms=0.5, depth=1))
    # the first rollout starts at 0 ms, within budget: the base's choice alone is evaluated,
    # and the search runs out of time unless that rollout earned all there was to earn
    searched = run_episode(search, scenario, 8, 2)
    stats = search.stats
    assert stats.candidates == stats.out_of_time + stats.at_ceiling == stats.searched > stats.at_ceiling
    assert searched.metrics() == base.metrics()


def test_the_budget_stops_the_search_at_the_best_candidate_so_far(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 1.5 ms and one rollout per millisecond, two candidates fit in a decision: the
    base's and its runner-up, and the search still departs where that one is better."""
    fake_clock(monkeypatch)
    scenario = make_scenario(WorkloadSpec("deadline-tight", nodes=4, jobs=60), 2)
    search = SearchPolicy(make_heuristic("fifo"), SearchOptions(budget_ms=1.5, margin=0.0, depth=1))
    run_episode(search, scenario, 8, 2)
    stats = search.stats
    assert stats.out_of_time > 0
    assert stats.candidates <= 2 * stats.searched
    assert stats.changed > 0
