"""The teacher prior: observations carry a heuristic's choice, and a policy that adds a
learned weight to it starts out as that heuristic, on any cluster, through every
inference path."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from pydantic import ValidationError

from worker.contracts import PPOParams
from worker.rl.config import PPOHyperparams, TrainingEnv, TrainRoundConfig, env_config, resolve_prior
from worker.rl.fast_forward import ForwardWeights, masked_logits
from worker.rl.inference import PPOPolicy
from worker.rl.module import MASKED_LOGIT, PairScoringModule
from worker.sim.env import SchedulingEnv
from worker.sim.evaluate import evaluate_policies
from worker.sim.features import PRIOR_KEY, observation_space
from worker.sim.heuristics import make_heuristic
from worker.sim.heuristics.tuned import tuned_choice
from worker.sim.plan import plan_schedule
from worker.sim.teacher import make_env, make_teacher
from worker.sim.workloads import WorkloadSpec, make_scenario

TEACHER = "easy:edf+fastest"
"""A teacher with state (EASY keeps its head job) and a WAIT of its own."""


def prior_module(noise: float = 0.0) -> PairScoringModule:
    torch.manual_seed(0)
    module = PairScoringModule(
        observation_space=observation_space(32, 16, prior=True),
        action_space=gym.spaces.Discrete(32 * 16 + 1),
        model_config={"embed_dim": 16, "hidden": 24, "prior": TEACHER, "prior_weight": 3.0},
    )
    if noise:
        with torch.no_grad():
            for parameter in module.parameters():
                parameter.add_(torch.randn_like(parameter) * noise)
    return module.eval()


def test_observations_carry_the_teachers_choice_at_every_decision() -> None:
    """In lockstep with the teacher playing alone on the same episode, the one-hot marks
    exactly the action it takes, WAITs included."""
    scenario = make_scenario(WorkloadSpec("deadline-tight", 4, jobs=80), 5)  # 4 nodes: EASY waits
    env = make_env({"nodes": 4, "window": 16, "prior": TEACHER})
    alone = SchedulingEnv({"nodes": 4, "window": 16, "observe": False})
    assert PRIOR_KEY in env.observation_space.spaces
    env.load_scenario(scenario, 5)
    alone.load_scenario(scenario, 5)
    teacher = make_heuristic(TEACHER)
    teacher.reset(5)
    done, steps, waits = False, 0, 0
    while not done:
        obs = env.decision_view().obs
        action = teacher.act(alone.decision_view())
        assert obs[PRIOR_KEY].sum() == 1.0 and obs[PRIOR_KEY][action] == 1.0
        waits += action == 16 * 4
        _, _, terminated, truncated, _ = env.step(action)
        alone.step(action)
        done, steps = terminated or truncated, steps + 1
    assert steps > 80 and waits > 0


@pytest.mark.parametrize("teacher", [TEACHER, "random"])
def test_rllibs_env_adds_the_teachers_choice_to_the_plain_observation(teacher: str) -> None:
    """Through reset and step (RLlib's path), off the teacher's own trajectory and over
    episodes (the teacher reseeded with each): every observation is the plain env's, bit
    for bit, plus the one-hot at the action the teacher takes at that decision."""
    spec = WorkloadSpec("deadline-tight", 4, jobs=40)
    env = TrainingEnv(env_config(spec, 16, seed=7, prior=teacher))
    plain = TrainingEnv(env_config(spec, 16, seed=7))
    assert env.observation_space == observation_space(16, 4, prior=True)
    assert plain.observation_space == observation_space(16, 4)
    alone, rng = make_teacher(teacher), np.random.default_rng(0)
    for seed in (3, None):
        (obs, _), (expected, _) = env.reset(seed=seed), plain.reset(seed=seed)
        alone.reset(plain.unwrapped.sim_seed)
        done, steps = False, 0
        while not done:
            choice = alone.act(plain.unwrapped.decision_view())
            assert np.flatnonzero(obs[PRIOR_KEY]).tolist() == [choice]
            assert obs.keys() - {PRIOR_KEY} == expected.keys()
            for key, value in expected.items():
                np.testing.assert_array_equal(obs[key], value)
            assert env.observation_space.contains(obs)
            action = int(rng.choice(np.flatnonzero(obs["action_mask"] > 0.5)))
            obs, reward, terminated, truncated, _ = env.step(action)
            expected, plain_reward, _, _, _ = plain.step(action)
            assert reward == plain_reward
            done, steps = terminated or truncated, steps + 1
        assert steps > 40


def test_an_env_without_a_prior_has_no_prior_entry() -> None:
    env = SchedulingEnv({"nodes": 4, "window": 8})
    obs, _ = env.reset(seed=1)
    assert PRIOR_KEY not in obs and PRIOR_KEY not in env.observation_space.spaces


@pytest.mark.parametrize("nodes", [16, 48])
def test_an_untrained_residual_policy_plays_exactly_as_its_teacher(nodes: int) -> None:
    """Greedy = teacher at initialisation, also on a cluster it was not built for: the
    learned correction starts far below the prior's weight."""
    module = prior_module()
    spec = WorkloadSpec("deadline-tight", nodes, jobs=120)
    results = evaluate_policies([PPOPolicy(module, "residual"), make_heuristic(TEACHER)], spec, 32, 2, seed=4)
    assert results[0].metrics == results[1].metrics


def test_numba_and_torch_add_the_prior_the_same_way() -> None:
    """Equal logits with the prior on a valid pair, on WAIT and on a masked pair (where
    it must stay masked), for weights far from their initialisation."""
    module = prior_module(noise=0.3)
    weights = ForwardWeights.from_module(module)
    assert weights.prior_weight == pytest.approx(float(module.prior_weight.detach()), rel=1e-6)
    env = SchedulingEnv({"nodes": 16, "window": 32})
    env.reset(seed=3)
    obs = dict(env.decision_view().obs)
    valid = np.flatnonzero(obs["action_mask"] > 0.5)
    masked = np.flatnonzero(obs["action_mask"] <= 0.5)
    for marked in (valid[0], len(obs["action_mask"]) - 1, masked[0]):
        obs[PRIOR_KEY] = np.zeros_like(obs["action_mask"])
        obs[PRIOR_KEY][marked] = 1.0
        with torch.no_grad():
            expected = module.masked_logits({k: torch.from_numpy(v)[None] for k, v in obs.items()})[0].numpy()
        got = masked_logits(weights, obs)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        assert got[masked[0]] == MASKED_LOGIT
    torch_policy = PPOPolicy(module, backend="torch")
    np.testing.assert_allclose(torch_policy.logits(obs), got, rtol=1e-5, atol=1e-5)


def test_plans_run_the_modules_teacher() -> None:
    scenario = make_scenario(WorkloadSpec("deadline-tight", 16, jobs=60), 2)
    nodes, jobs = list(scenario.nodes), list(scenario.jobs)
    residual = plan_schedule(PPOPolicy(prior_module()), nodes, jobs)
    teacher = plan_schedule(make_heuristic(TEACHER), nodes, jobs)
    assert residual.placements == teacher.placements


def test_prior_tuned_is_resolved_to_the_workloads_composition() -> None:
    spec = WorkloadSpec("steady", 16, jobs=200)  # pinned in tuned.json
    cfg = resolve_prior(TrainRoundConfig(workload=spec, window=32, ppo=PPOHyperparams(prior="tuned")))
    assert cfg.ppo.prior == tuned_choice(spec, 32).choice != "tuned"
    assert cfg.ppo.model_config()["prior"] == cfg.ppo.prior


def test_an_unknown_prior_is_refused_at_the_boundary() -> None:
    with pytest.raises(ValidationError, match="prior"):
        PPOParams(prior="fastest+fifo")
    assert PPOParams(prior="tuned").prior == "tuned"
    with pytest.raises(ValueError, match="prior 'nonsense'"):
        make_env({"nodes": 4, "window": 8, "prior": "nonsense"})


def test_a_policy_trained_without_backfilling_keeps_acting_without_it() -> None:
    """The checkpoint's `backfilling: False` travels with the module: its untrained
    residual plays exactly as its teacher does without backfilling, not as with it."""
    from worker.sim.evaluate import run_episode
    from worker.sim.traces import pool_scenario

    torch.manual_seed(0)
    module = PairScoringModule(
        observation_space=observation_space(32, 1, prior=True),
        action_space=gym.spaces.Discrete(32 + 1),
        model_config={"embed_dim": 16, "hidden": 24, "prior": "f1", "backfilling": False},
    ).eval()
    policy = PPOPolicy(module, "residual")
    assert policy.env_options == {"prior": "f1", "backfilling": False}
    scenario = pool_scenario(0, 300)

    def slowdown(played: object, options: dict | None = None) -> float:
        return run_episode(played, scenario, 32, 0, options).metrics().mean_bounded_slowdown

    strict = slowdown(make_heuristic("f1"), {"backfilling": False})
    assert slowdown(policy) == pytest.approx(strict)
    assert slowdown(make_heuristic("f1")) != pytest.approx(strict)
