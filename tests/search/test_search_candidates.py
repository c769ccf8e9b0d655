"""The candidates a search compares: the base's choice first, its runners-up (its own
ranking when it has one), the other GPU speeds when asked, WAIT only when allowed and
wanted."""

from __future__ import annotations

import numpy as np

from worker.contracts.search import SearchOptions
from worker.search.candidates import candidate_actions
from worker.search.policy import SearchPolicy
from worker.sim.env import SchedulingEnv
from worker.sim.heuristics import make_heuristic
from worker.sim.model import Job, Node, Scenario
from worker.sim.policy import DecisionView


def two_speed_view():
    nodes = (Node("slow", 8, 64, {"p4": 2}, {"p4": 0.6}), Node("fast", 8, 64, {"p5": 2}))
    jobs = tuple(Job(f"j{i}", 1, 1, 1 + i % 3, 0.0, 100.0 * (i + 1), 100.0, 1e5) for i in range(3))
    env = SchedulingEnv({"nodes": 2, "window": 4, "observe": False, "objective": "deadline"})
    env.load_scenario(Scenario("plan", nodes, jobs, 1e7))
    return env.decision_view()


def test_the_base_choice_comes_first_then_its_order_on_its_placement() -> None:
    view = two_speed_view()
    base = make_heuristic("sjf+fastest")
    base_action = base.act(view)
    actions = candidate_actions(view, base, base_action, limit=8, wait_allowed=True)
    n = view.fits.shape[1]
    assert actions[0] == base_action
    assert [a // n for a in actions[:-1]] == [0, 1, 2]  # shortest estimate first
    assert all(a % n == 1 for a in actions[:-1])  # the fast node, as `fastest` places
    assert actions[-1] == view.wait_action


def test_other_speeds_and_no_wait() -> None:
    view = two_speed_view()
    base = make_heuristic("sjf+fastest")
    actions = candidate_actions(view, base, base.act(view), limit=8, wait_allowed=False, other_speeds=True)
    n = view.fits.shape[1]
    assert view.wait_action not in actions
    assert sorted((a // n, a % n) for a in actions) == [(s, node) for s in range(3) for node in (0, 1)]
    limited = candidate_actions(view, base, actions[0], limit=4, wait_allowed=True, other_speeds=True)
    assert len(limited) == 4 and limited[-1] == view.wait_action


def test_each_job_on_the_placements_next_best_nodes_after_every_job_on_its_best() -> None:
    view = two_speed_view()
    base = make_heuristic("sjf+fastest")
    actions = candidate_actions(view, base, base.act(view), limit=8, wait_allowed=False, nodes_per_job=2)
    n = view.fits.shape[1]
    assert [(a // n, a % n) for a in actions] == [(0, 1), (1, 1), (2, 1), (0, 0), (1, 0), (2, 0)]
    assert (
        candidate_actions(view, base, actions[0], limit=4, wait_allowed=False, nodes_per_job=2) == actions[:4]
    )


class RankingBase:
    """A base that ranks its actions itself, as a checkpoint does by logit."""

    name = "ranker"
    needs_observation = False

    def __init__(self, ranking: list[int]) -> None:
        self.ranking = np.array(ranking)

    def reset(self, seed: int) -> None:
        """Stateless."""

    def act(self, view: DecisionView) -> int:
        return int(self.ranking[0])

    def ranked_actions(self, view: DecisionView) -> np.ndarray:
        return self.ranking


def test_a_ranking_base_offers_its_own_runners_up() -> None:
    view = two_speed_view()
    n = view.fits.shape[1]
    ranking = [2 * n + 0, 0 * n + 1, 2 * n + 1, 1 * n + 0]  # job 2 on the slow node first
    base = RankingBase(ranking)
    actions = candidate_actions(view, base, base.act(view), limit=4, wait_allowed=True, other_speeds=True)
    assert actions == [*ranking[:3], view.wait_action]  # its order, not sjf's, and no extra speeds
    assert candidate_actions(view, base, ranking[1], limit=3, wait_allowed=False) == [
        ranking[1],
        ranking[0],
        ranking[2],
    ]


def test_a_search_over_a_ranking_base_ranks_as_its_base_at_every_depth() -> None:
    view = two_speed_view()
    n = view.fits.shape[1]
    ranking = [1 * n + 0, 2 * n + 0, 0 * n + 0]
    search = SearchPolicy(RankingBase(ranking), SearchOptions(depth=2))
    inner = search.base  # the depth-1 search the outer level compares candidates with
    actions = candidate_actions(view, inner, ranking[0], limit=3, wait_allowed=False)
    assert actions == ranking
