"""Roll policies out on the same episodes and average their metrics.

Every policy sees exactly the same scenarios (and failure draws): episode i uses a seed
derived from (seed, i), so differences between rows are the policies', not the dice's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from worker.sim.env import SchedulingEnv
from worker.sim.metrics import EpisodeMetrics
from worker.sim.model import Scenario
from worker.sim.policy import Policy
from worker.sim.teacher import make_env
from worker.sim.workloads import WorkloadSpec, make_scenario


@dataclass(frozen=True, slots=True)
class PolicyResult:
    policy: str
    metrics: dict[str, float]
    """EpisodeMetrics fields averaged over the episodes."""


def episode_seeds(seed: int, episodes: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(episodes)]


def run_episode(
    policy: Policy, scenario: Scenario, window: int, sim_seed: int, env_options: dict[str, Any] | None = None
) -> SchedulingEnv:
    """Play one episode to its end and return the finished env (metrics, engine state).
    `env_options` (e.g. `{"backfilling": False}`) add to what the policy itself asks for,
    a learned policy's teacher (`prior`) included."""
    observe = getattr(policy, "needs_observation", True)
    config = {"nodes": len(scenario.nodes), "window": window, "observe": observe}
    env = make_env(config | (env_options or {}) | getattr(policy, "env_options", {}))
    env.load_scenario(scenario, sim_seed)
    policy.reset(sim_seed)
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(policy.act(env.decision_view()))
    return env if isinstance(env, SchedulingEnv) else env.scheduling_env


def evaluate_policies(
    policies: list[Policy],
    spec: WorkloadSpec,
    window: int,
    episodes: int,
    seed: int,
    seeds: list[int] | None = None,
) -> list[PolicyResult]:
    """Mean metrics per policy; `seeds` overrides the episode seeds derived from `seed`."""
    runs: dict[str, list[EpisodeMetrics]] = {p.name: [] for p in policies}
    for episode_seed in episode_seeds(seed, episodes) if seeds is None else seeds:
        scenario = make_scenario(spec, episode_seed)
        for policy in policies:
            env = run_episode(policy, scenario, window, episode_seed)
            runs[policy.name].append(env.metrics())
    return [PolicyResult(name, EpisodeMetrics.mean(metrics)) for name, metrics in runs.items()]
