"""Roll policies out on the same episodes and average their metrics.

Every policy sees exactly the same scenarios (and failure draws): episode i uses a seed
derived from (seed, i), so differences between rows are the policies', not the dice's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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
    ms_per_decision: float = field(default=0.0, compare=False)
    """Wall-clock milliseconds the policy took per decision (its `act`, not the env's step);
    not compared: two runs of a deterministic policy are equal whatever the clock says."""


class _Timed:
    """A policy's `act` with a stopwatch: what a decision costs, e.g. a search's budget."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name = policy.name
        self.needs_observation = getattr(policy, "needs_observation", True)
        self.env_options = getattr(policy, "env_options", {})
        self.seconds = 0.0
        self.decisions = 0

    def reset(self, seed: int) -> None:
        self.policy.reset(seed)

    def act(self, view: Any) -> int:
        started = time.perf_counter()
        action = self.policy.act(view)
        self.seconds += time.perf_counter() - started
        self.decisions += 1
        return action

    @property
    def ms_per_decision(self) -> float:
        return 1000.0 * self.seconds / self.decisions if self.decisions else 0.0


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
    timed = [_Timed(p) for p in policies]
    for episode_seed in episode_seeds(seed, episodes) if seeds is None else seeds:
        scenario = make_scenario(spec, episode_seed)
        for policy in timed:
            env = run_episode(policy, scenario, window, episode_seed)
            runs[policy.name].append(env.metrics())
    return [
        PolicyResult(t.name, EpisodeMetrics.mean(runs[t.name]), t.ms_per_decision)
        for t in {t.name: t for t in timed}.values()
    ]
