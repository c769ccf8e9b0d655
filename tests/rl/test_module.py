"""The pair-scoring module on its own (no Ray): masking, size independence, finiteness."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical

from worker.rl.module import PairScoringModule
from worker.sim.env import SchedulingEnv
from worker.sim.features import GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES, PAIR_FEATURES, observation_space


def make_module(window: int = 32, nodes: int = 16, seed: int = 0) -> PairScoringModule:
    torch.manual_seed(seed)
    return PairScoringModule(
        observation_space=observation_space(window, nodes),
        action_space=gym.spaces.Discrete(window * nodes + 1),
        model_config={"embed_dim": 16, "hidden": 32},
    )


def random_obs(batch: int, window: int, nodes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(batch, window * nodes + 1, generator=g) < 0.2).float()
    mask[0] = 0.0  # a row with nothing valid must stay finite
    mask[1] = 0.0
    mask[1, -1] = 1.0  # only WAIT valid
    return {
        "jobs": torch.randn(batch, window, JOB_FEATURES, generator=g),
        "nodes": torch.randn(batch, nodes, NODE_FEATURES, generator=g),
        "pairs": torch.randn(batch, window, nodes, PAIR_FEATURES, generator=g),
        "global": torch.randn(batch, GLOBAL_FEATURES, generator=g),
        "action_mask": mask,
    }


@pytest.mark.parametrize("forward", ["forward_exploration", "forward_inference", "forward_train"])
def test_masked_actions_have_zero_probability(forward: str) -> None:
    module = make_module()
    obs = random_obs(64, 32, 16)
    out = getattr(module, forward)({Columns.OBS: obs})
    logits = out[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (64, 32 * 16 + 1)
    assert torch.isfinite(logits).all()
    dist = TorchCategorical.from_logits(logits)
    probs = torch.softmax(logits, dim=-1)
    invalid = obs["action_mask"] < 0.5
    assert (probs[2:][invalid[2:]] == 0).all()
    assert torch.isfinite(dist.entropy()).all()
    assert probs[1, -1] == 1.0  # only WAIT valid: it gets all the mass
    samples = torch.stack([dist.sample() for _ in range(50)], dim=1)[2:]
    assert obs["action_mask"][2:].gather(1, samples).min() == 1.0


def test_gradients_stay_finite_with_masks() -> None:
    module = make_module()
    obs = random_obs(16, 32, 16)
    out = module.forward_train({Columns.OBS: obs})
    dist = TorchCategorical.from_logits(out[Columns.ACTION_DIST_INPUTS])
    values = module.compute_values({Columns.OBS: obs}, out[Columns.EMBEDDINGS])
    loss = -dist.entropy().mean() + values.pow(2).mean()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)


def test_values_match_with_and_without_embeddings() -> None:
    module = make_module()
    obs = random_obs(8, 32, 16)
    out = module.forward_train({Columns.OBS: obs})
    with torch.no_grad():
        direct = module.compute_values({Columns.OBS: obs})
        shared = module.compute_values({Columns.OBS: obs}, out[Columns.EMBEDDINGS])
    assert direct.shape == (8,)
    assert torch.allclose(direct, shared)


def test_parameters_do_not_depend_on_window_or_nodes() -> None:
    small, large = make_module(32, 16), make_module(8, 64)
    assert {k: v.shape for k, v in small.state_dict().items()} == {
        k: v.shape for k, v in large.state_dict().items()
    }


def test_a_16_node_module_scores_a_64_node_observation_from_the_env() -> None:
    module = make_module(32, 16)
    env = SchedulingEnv({"workload": "steady", "nodes": 64, "window": 32})
    obs, _ = env.reset(seed=3)
    batch = {k: torch.from_numpy(v).unsqueeze(0) for k, v in obs.items()}
    logits = module.forward_inference({Columns.OBS: batch})[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (1, 32 * 64 + 1)
    action = int(logits.argmax())
    assert obs["action_mask"][action] == 1.0


def test_env_observation_dict_is_read_unchanged() -> None:
    """The keys the module reads are exactly the env's observation keys."""
    space = SchedulingEnv({"nodes": 4, "window": 8}).observation_space
    assert set(space.spaces) == {"jobs", "nodes", "pairs", "global", "action_mask"}
    module = make_module(8, 4)
    obs = {k: torch.from_numpy(np.asarray(v.sample())).unsqueeze(0) for k, v in space.items()}
    obs["action_mask"] = torch.ones_like(obs["action_mask"])
    out = module.forward_inference({Columns.OBS: obs})
    assert out[Columns.ACTION_DIST_INPUTS].shape == (1, 8 * 4 + 1)
