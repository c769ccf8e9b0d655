"""`search:<checkpoint>`: the learned policy is the source of candidates, its top (job,
node) pairs by logit under the action mask, nodes it cannot tell apart counted once; a
training round's evaluation can put that search beside the checkpoint."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from worker.contracts.search import SearchOptions
from worker.convert import evaluation_result
from worker.rl.evaluate import SEARCH_NAME, evaluate
from worker.rl.inference import PPOPolicy
from worker.rl.module import PairScoringModule
from worker.search import rollout as rollout_module
from worker.search.policy import SearchPolicy
from worker.sim.features import observation_space
from worker.sim.model import Job, Node, Scenario
from worker.sim.policy import DecisionView
from worker.sim.teacher import make_env
from worker.sim.workloads import WorkloadSpec

WINDOW, NODES = 8, 4


@pytest.fixture(scope="module")
def policy() -> PPOPolicy:
    torch.manual_seed(3)
    module = PairScoringModule(
        observation_space=observation_space(WINDOW, NODES),
        action_space=gym.spaces.Discrete(WINDOW * NODES + 1),
        model_config={"embed_dim": 16, "hidden": 32},
    )
    module.eval()
    return PPOPolicy(module)


def backlog_view(started: int = 0) -> DecisionView:
    """Three identical free p5 nodes and a p4 one; jobs of several sizes waiting, the first
    `started` of them placed on the p4 node (then WAIT is allowed: a job is running)."""
    nodes = (
        *(Node(f"p5-{i}", 16, 128, {"p5": 4}) for i in range(3)),
        Node("p4", 16, 128, {"p4": 4}, {"p4": 0.6}),
    )
    jobs = tuple(
        Job(f"j{i}", 2 + i % 3, float(1 + i % 4), 1 + i % 3, 0.0, 600.0 * (1 + i), 600.0 * (1 + i), 1e5)
        for i in range(10)
    )
    env = make_env({"nodes": NODES, "window": WINDOW, "objective": "deadline"})
    env.load_scenario(Scenario("backlog", nodes, jobs, 1e7))
    for _ in range(started):
        env.step(NODES - 1)
    return env.decision_view()


def test_its_ranking_is_every_allowed_pair_by_logit_with_indistinguishable_nodes_once(
    policy: PPOPolicy,
) -> None:
    view = backlog_view()
    assert view.obs is not None
    mask, logits = view.obs["action_mask"], policy.logits(view.obs)
    ranked = policy.ranked_actions(view)
    assert all(mask[a] > 0.5 for a in ranked) and view.wait_action not in ranked
    assert np.all(np.diff(logits[ranked]) <= 0)  # best first
    kept = {(a // NODES, float(logits[a])) for a in ranked}
    assert len(kept) == len(ranked)  # no job twice at the same logit
    allowed = np.flatnonzero(mask[:-1] > 0.5)
    assert {(a // NODES, float(logits[a])) for a in allowed} == kept  # nothing else left out
    assert len(ranked) < len(allowed)  # the three identical p5 nodes tie: one candidate each job


def test_a_search_over_it_compares_its_choice_then_its_top_pairs_then_wait(
    policy: PPOPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = backlog_view(started=1)
    monkeypatch.setattr(rollout_module, "ceiling_of", lambda belief: None)  # compare every candidate
    search = SearchPolicy(policy, SearchOptions(candidates=5, depth=1, budget_ms=60_000))
    search.reset(0)
    search.act(view)
    choice = policy.act(view)
    runners_up = [a for a in policy.ranked_actions(view).tolist() if a != choice][:3]
    assert list(search.last_values) == [choice, *runners_up, view.wait_action]


def test_a_rounds_evaluation_puts_the_search_over_its_checkpoint_beside_it(tmp_path: Path) -> None:
    """The training loop's evaluation with a search row: `search:ppo` on the same held-out
    episodes as the checkpoint, never taken for the best heuristic, scored in the run's
    objective, and carried to the round's wire model."""
    torch.manual_seed(4)
    spec = WorkloadSpec("deadline-tight", nodes=4, jobs=40, load=1.3)
    module = PairScoringModule(
        observation_space=observation_space(WINDOW, spec.nodes),
        action_space=gym.spaces.Discrete(WINDOW * spec.nodes + 1),
        model_config={"embed_dim": 16, "hidden": 32},
    )
    module.save_to_path(str(tmp_path / "module"))
    options = SearchOptions(candidates=4, depth=1, budget_ms=60_000)
    heuristics = ["fifo", "edf+fastest"]
    report = evaluate(str(tmp_path / "module"), spec, WINDOW, 2, 9, heuristics, "slowdown", search=options)
    assert report.search is not None and report.search.policy == SEARCH_NAME
    assert report.best_heuristic in heuristics
    assert report.search_value == -report.search.metrics["mean_bounded_slowdown"]  # the run's objective
    assert report.search_ms_per_decision is not None and report.search_ms_per_decision > 0
    plain = evaluate(str(tmp_path / "module"), spec, WINDOW, 2, 9, heuristics, "slowdown")
    assert plain.search is None and plain.ppo == report.ppo  # the same episodes, the same policy row
    wire = evaluation_result(report)
    assert wire.search is not None and wire.search.policy == SEARCH_NAME
    assert (wire.search_value, wire.search_gap_closed) == (report.search_value, report.search_gap_closed)
