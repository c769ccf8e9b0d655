"""The numba forward computes the module's own masked logits, and plans agree with torch's."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from worker.rl.fast_forward import ForwardWeights, masked_logits
from worker.rl.inference import PPOPolicy, choose
from worker.rl.module import MASKED_LOGIT, PairScoringModule
from worker.sim.env import SchedulingEnv
from worker.sim.evaluate import run_episode
from worker.sim.features import GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES, PAIR_FEATURES, observation_space
from worker.sim.plan import plan_schedule
from worker.sim.workloads import WorkloadSpec, make_scenario


def make_module(pair_hidden: int = 0, seed: int = 0, window: int = 32, nodes: int = 16) -> PairScoringModule:
    """A module with weights far from their near-uniform initialisation, so logits
    differ between pairs and a wrong index or sign would show."""
    torch.manual_seed(seed)
    module = PairScoringModule(
        observation_space=observation_space(window, nodes),
        action_space=gym.spaces.Discrete(window * nodes + 1),
        model_config={"embed_dim": 16, "hidden": 24, "pair_hidden": pair_hidden},
    )
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    module.eval()
    return module


def torch_logits(module: PairScoringModule, obs: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        batch = {key: torch.from_numpy(value).unsqueeze(0) for key, value in obs.items()}
        return module.masked_logits(batch)[0].numpy()


def observations(nodes: int, steps: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Observations of a real episode (random valid actions), copied."""
    env = SchedulingEnv({"nodes": nodes, "window": 32})
    env.load_scenario(make_scenario(WorkloadSpec("steady", nodes, jobs=120), seed), seed)
    rng = np.random.default_rng(seed)
    seen = []
    for _ in range(steps):
        obs = env.decision_view().obs
        assert obs is not None
        seen.append({key: value.copy() for key, value in obs.items()})
        valid = np.flatnonzero(obs["action_mask"] > 0.5)
        _, _, terminated, truncated, _ = env.step(int(rng.choice(valid)))
        if terminated or truncated:
            break
    return seen


@pytest.mark.parametrize("pair_hidden", [0, 8])
@pytest.mark.parametrize("nodes", [16, 64])
def test_logits_equal_the_modules_on_real_observations(pair_hidden: int, nodes: int) -> None:
    module = make_module(pair_hidden)
    weights = ForwardWeights.from_module(module)
    for obs in observations(nodes, 60, seed=nodes + pair_hidden):
        expected = torch_logits(module, obs)
        got = masked_logits(weights, obs)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        masked = obs["action_mask"] <= 0.5
        assert np.all(got[masked] == MASKED_LOGIT)


def test_logits_equal_on_random_inputs_with_wait_masked_and_empty_rows() -> None:
    module = make_module(pair_hidden=4, seed=3)
    weights = ForwardWeights.from_module(module)
    rng = np.random.default_rng(0)
    for trial in range(20):
        obs = {
            "jobs": rng.normal(size=(32, JOB_FEATURES)).astype(np.float32),
            "nodes": rng.normal(size=(16, NODE_FEATURES)).astype(np.float32),
            "pairs": rng.normal(size=(32, 16, PAIR_FEATURES)).astype(np.float32),
            "global": rng.normal(size=GLOBAL_FEATURES).astype(np.float32),
            "action_mask": (rng.random(32 * 16 + 1) < 0.2).astype(np.float32),
        }
        obs["jobs"][rng.random(32) < 0.3, 0] = 0.0  # empty window slots
        obs["nodes"][rng.random(16) < 0.3, 0] = 0.0  # unusable nodes
        obs["action_mask"][-1] = float(trial % 2)  # WAIT valid or not
        expected = torch_logits(module, obs)
        np.testing.assert_allclose(masked_logits(weights, obs), expected, rtol=1e-5, atol=1e-5)


def test_numba_and_torch_backends_make_the_same_plan() -> None:
    module = make_module(seed=1)
    scenario = make_scenario(WorkloadSpec("steady", 16, jobs=150), 4)
    nodes, jobs = list(scenario.nodes), list(scenario.jobs)
    fast = plan_schedule(PPOPolicy(module, backend="numba"), nodes, jobs)
    slow = plan_schedule(PPOPolicy(module, backend="torch"), nodes, jobs)
    assert fast.placements == slow.placements
    assert fast.metrics == slow.metrics
    assert len(fast.placements) > 100


def test_only_valid_actions_and_unknown_backend() -> None:
    module = make_module(seed=2)

    class Checked(PPOPolicy):
        def act(self, view):  # type: ignore[no-untyped-def]
            action = super().act(view)
            assert view.obs["action_mask"][action] == 1.0
            return action

    env = run_episode(Checked(module), make_scenario(WorkloadSpec("steady", 16, jobs=60), 2), 32, 2)
    assert env.metrics().jobs_finished > 0
    with pytest.raises(ValueError, match="unknown inference backend"):
        PPOPolicy(module, backend="jax")  # type: ignore[arg-type]


def test_choose_never_returns_a_masked_action_for_nan_logits() -> None:
    mask = np.zeros(9, np.float32)
    mask[[2, 5]] = 1.0
    logits = np.full(9, np.nan, np.float32)
    assert choose(logits, mask) in (2, 5)
    logits = np.zeros(9, np.float32)
    logits[0] = 10.0  # the module prefers a masked action (broken weights)
    assert choose(logits, mask) in (2, 5)
