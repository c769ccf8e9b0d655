"""Behaviour-cloning warm start: the cloned policy plays like its teacher."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from worker.rl.inference import PPOPolicy
from worker.rl.module import PairScoringModule
from worker.rl.warmstart import DEMO_SEED_OFFSET, behaviour_clone, collect
from worker.sim.evaluate import evaluate_policies
from worker.sim.features import observation_space
from worker.sim.heuristics import make_heuristic
from worker.sim.workloads import WorkloadSpec

SPEC = WorkloadSpec("deadline-tight", nodes=4, jobs=40)
WINDOW = 8


def fresh_module() -> PairScoringModule:
    torch.manual_seed(0)
    return PairScoringModule(
        observation_space=observation_space(WINDOW, SPEC.nodes),
        action_space=gym.spaces.Discrete(WINDOW * SPEC.nodes + 1),
        model_config={"embed_dim": 16, "hidden": 32},
    )


def test_demonstrations_are_valid_decisions_from_training_seeds() -> None:
    demos = collect(SPEC, WINDOW, "sjf+fastest", episodes=2, seed=0, gamma=0.99)
    assert len(demos) > 40
    masks = demos.obs["action_mask"]
    assert (masks[range(len(demos)), demos.actions] == 1).all(), "only actions the env allows"
    assert DEMO_SEED_OFFSET >= 2**32  # never an evaluation seed (those are 32-bit)


def test_cloned_policy_matches_its_teacher() -> None:
    teacher = "sjf+fastest"
    demos = collect(SPEC, WINDOW, teacher, episodes=12, seed=0, gamma=0.99)
    module = fresh_module()
    report = behaviour_clone(module, demos, epochs=12, lr=3e-3, seed=0)
    assert report.accuracy > 0.8, report
    results = evaluate_policies(
        [PPOPolicy(module, "clone"), make_heuristic(teacher), make_heuristic("random")],
        SPEC,
        WINDOW,
        4,
        seed=9,
    )
    score = {r.policy: r.metrics["score"] for r in results}
    assert score["clone"] >= score["random"]
    assert score["clone"] == pytest.approx(score[teacher], abs=0.05)
