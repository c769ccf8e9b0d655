"""Module-only inference without Ray: loading, the cache, errors, valid actions."""

from __future__ import annotations

import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from worker.rl import inference
from worker.rl.inference import CheckpointError, PPOPolicy, load_module, module_dir
from worker.rl.module import PairScoringModule
from worker.sim.evaluate import run_episode
from worker.sim.features import GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES, PAIR_FEATURES, observation_space
from worker.sim.workloads import WorkloadSpec, make_scenario


def save_module(path: Path, window: int = 32, nodes: int = 16) -> Path:
    torch.manual_seed(0)
    module = PairScoringModule(
        observation_space=observation_space(window, nodes),
        action_space=gym.spaces.Discrete(window * nodes + 1),
        model_config={"embed_dim": 16, "hidden": 32},
    )
    module.save_to_path(str(path))
    return path


@pytest.fixture
def module_ckpt(tmp_path: Path) -> Path:
    inference.clear_cache()
    return save_module(tmp_path / "module")


class CheckedPolicy(PPOPolicy):
    """Asserts every decision is a valid action."""

    def act(self, view):  # type: ignore[no-untyped-def]
        action = super().act(view)
        assert view.obs["action_mask"][action] == 1.0, action
        return action


def test_load_accepts_the_module_dir_and_caches(module_ckpt: Path) -> None:
    first = load_module(module_ckpt)
    assert isinstance(first, PairScoringModule)
    assert not first.training
    assert load_module(str(module_ckpt) + "/") is first
    assert module_dir(module_ckpt) == module_ckpt.resolve()


def test_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.settings import get_settings

    inference.clear_cache()
    monkeypatch.setattr(get_settings(), "policy_cache_size", 2)
    paths = [save_module(tmp_path / f"m{i}") for i in range(3)]
    modules = [load_module(p) for p in paths]
    assert len(inference._cache) == 2
    assert load_module(paths[2]) is modules[2]
    assert load_module(paths[0]) is not modules[0]  # evicted, reloaded


@pytest.mark.parametrize("nodes", [16, 64])
def test_greedy_policy_only_takes_valid_actions(module_ckpt: Path, nodes: int) -> None:
    policy = CheckedPolicy(load_module(module_ckpt))
    scenario = make_scenario(WorkloadSpec("steady", nodes=nodes, jobs=60), seed=5)
    env = run_episode(policy, scenario, window=32, sim_seed=5)
    assert env.metrics().jobs_finished > 0


def test_greedy_action_falls_back_when_weights_are_broken(module_ckpt: Path) -> None:
    module = inference._load(module_dir(module_ckpt))
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(float("nan"))
    mask = np.zeros(32 * 16 + 1, dtype=np.float32)
    mask[[7, 100]] = 1.0
    obs = {
        "jobs": np.zeros((32, JOB_FEATURES), np.float32),
        "nodes": np.zeros((16, NODE_FEATURES), np.float32),
        "pairs": np.zeros((32, 16, PAIR_FEATURES), np.float32),
        "global": np.zeros(GLOBAL_FEATURES, np.float32),
        "action_mask": mask,
    }
    assert inference.greedy_action(module, obs) in (7, 100)


def test_missing_checkpoint(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(CheckpointError, match="not found") as info:
        load_module(missing)
    assert str(missing) in str(info.value)


def test_file_instead_of_dir(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(CheckpointError, match="not a directory"):
        load_module(path)


def test_empty_dir_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not an RLlib policy checkpoint") as info:
        load_module(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_corrupt_state(module_ckpt: Path) -> None:
    state = next(module_ckpt.glob("module_state*"))
    state.write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="cannot load policy checkpoint") as info:
        load_module(module_ckpt)
    assert str(module_ckpt.resolve()) in str(info.value)


def test_corrupt_class_file(module_ckpt: Path) -> None:
    (module_ckpt / "class_and_ctor_args.pkl").write_bytes(b"\x80\x04garbage")
    with pytest.raises(CheckpointError):
        load_module(module_ckpt)


def test_incompatible_module_class(tmp_path: Path) -> None:
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
        DefaultPPOTorchRLModule,
    )

    other = DefaultPPOTorchRLModule(
        observation_space=gym.spaces.Box(-1, 1, (4,), np.float32),
        action_space=gym.spaces.Discrete(2),
        model_config={"fcnet_hiddens": [8]},
    )
    other.save_to_path(str(tmp_path / "other"))
    with pytest.raises(CheckpointError, match="incompatible checkpoint"):
        load_module(tmp_path / "other")


def test_truncated_checkpoint_dir(module_ckpt: Path, tmp_path: Path) -> None:
    copy = tmp_path / "truncated"
    shutil.copytree(module_ckpt, copy)
    for state in copy.glob("module_state*"):
        state.unlink()
    with pytest.raises(CheckpointError):
        load_module(copy)
