"""The residual policy's teacher: a wrapper adding a heuristic's choice to every observation.

A learned policy with a `prior` (worker/rl/module.py) adds a learned weight to the action
its teacher heuristic would take, so PPO learns a correction to a strong heuristic rather
than a policy from nothing. That choice is something a learner wants to see, not part of
the simulation, so a gymnasium wrapper adds it and the env itself knows no heuristic.
Training (RLlib's env), demonstrations and plans all build it through `make_env`, so a
checkpoint trained with a prior is served with the same observations it learned from.

How to run: `TeacherPrior(SchedulingEnv(EnvConfig(nodes=4)), "edf+fastest")`, or
`make_env({"nodes": 4, "prior": "edf+fastest"})`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np

from worker.sim.engine import ClusterSim
from worker.sim.env import EnvConfig, SchedulingEnv
from worker.sim.features import PRIOR_KEY, observation_space
from worker.sim.heuristics import make_heuristic
from worker.sim.metrics import EpisodeMetrics
from worker.sim.model import Scenario
from worker.sim.policy import DecisionView, Policy

PRIOR_OPTION = "prior"
"""The env option naming the teacher (RLlib's env_config, a learned policy's `env_options`)."""


def make_teacher(name: str) -> Policy:
    """The prior's heuristic, lenient like a plan's (jobs may carry no deadlines)."""
    try:
        teacher = make_heuristic(name)
    except ValueError as error:
        raise ValueError(f"prior {name!r}: {error}") from None
    if hasattr(teacher, "lenient"):
        teacher.lenient = True
    return teacher


class TeacherPrior(gym.Wrapper):
    """Each observation also carries `PRIOR_KEY`: one-hot over the K*N+1 actions, 1 at
    the action the teacher heuristic takes at this decision. The teacher is reseeded
    with the engine's seed at every new episode, so its choices replay exactly."""

    def __init__(self, env: gym.Env, teacher: str) -> None:
        super().__init__(env)
        self.teacher_name = teacher
        self.teacher = make_teacher(teacher)
        base = self.scheduling_env
        self.observation_space = observation_space(base.window, base.n_nodes, prior=True)
        self._obs: dict[str, np.ndarray] | None = None

    @property
    def scheduling_env(self) -> SchedulingEnv:
        base = self.env.unwrapped
        assert isinstance(base, SchedulingEnv), "TeacherPrior wraps a SchedulingEnv"
        return base

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.teacher.reset(self.scheduling_env.sim_seed)
        return self._with_choice(obs), info

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._with_choice(obs), reward, terminated, truncated, info

    def load_scenario(self, scenario: Scenario, sim_seed: int = 0) -> None:
        """SchedulingEnv.load_scenario, with the teacher reseeded and consulted."""
        base = self.scheduling_env
        base.load_scenario(scenario, sim_seed)
        self.teacher.reset(sim_seed)
        self._with_choice(base.decision_view().obs)

    def attach(self, sim: ClusterSim) -> None:
        """SchedulingEnv.attach (a search's belief, or a restored engine), with the teacher
        consulted at the decision it lands on."""
        base = self.scheduling_env
        base.attach(sim)
        self._with_choice(base.decision_view().obs)

    def decision_view(self) -> DecisionView:
        return replace(self.scheduling_env.decision_view(), obs=self._obs)

    def metrics(self) -> EpisodeMetrics:
        return self.scheduling_env.metrics()

    def _with_choice(self, obs: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
        """`obs` plus the teacher's choice; an env run with `observe=False` has none to add to."""
        if obs is None:
            self._obs = None
            return None
        view = self.scheduling_env.decision_view()
        choice = np.zeros(view.wait_action + 1, dtype=np.float32)
        choice[int(self.teacher.act(view))] = 1.0
        self._obs = {**obs, PRIOR_KEY: choice}
        return self._obs


def make_env(config: EnvConfig | Mapping[str, Any] | None = None) -> SchedulingEnv | TeacherPrior:
    """The env a policy runs in: a config naming a `prior` (dicts only: it is not an env
    setting) gets that teacher's choice in every observation."""
    if isinstance(config, EnvConfig):
        return SchedulingEnv(config)
    options = dict(config or {})
    prior = options.pop(PRIOR_OPTION, None)
    env = SchedulingEnv(options)
    return TeacherPrior(env, prior) if prior else env
