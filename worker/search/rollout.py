"""Rolling a base policy out on a belief, from a decision point it can return to.

One `RolloutEnv` per sampled future: the env (observations off unless the base needs
them) plays the belief engine, and `value(action, policy)` restores the engine to the
decision point, plays `action` then the base for up to `horizon` decisions, and returns
the reward earned. The env does the stepping, so WAIT, settling and the strict and
placement-only modes mean exactly what they mean in an episode.
"""

from __future__ import annotations

import dataclasses
import heapq
from dataclasses import fields
from typing import Any

import numpy as np

from worker.search.belief import BeliefEngine
from worker.sim.engine import EngineState
from worker.sim.env import SchedulingEnv
from worker.sim.metrics import EpisodeMetrics
from worker.sim.policy import Policy
from worker.sim.teacher import PRIOR_OPTION, TeacherPrior


class _BeliefEnv(SchedulingEnv):
    """The env a rollout steps: its end-of-episode metrics are skipped (a rollout reads
    rewards), except for `utilization`, whose reward is paid from them."""

    def metrics(self) -> EpisodeMetrics:
        if self.objective == "utilization":
            return super().metrics()
        return _NO_METRICS


_NO_METRICS = EpisodeMetrics(**{f.name: 0.0 for f in fields(EpisodeMetrics)})


def ceiling_of(belief: BeliefEngine) -> float | None:
    """The most a rollout can earn from `belief` now: every waiting or arriving job paid its
    whole share, for the objectives whose rewards are never negative and never taken back
    in a belief (no failures); None for the others."""
    pending = np.array(belief.waiting + list(range(belief.next_arrival, belief.n_jobs)), dtype=np.int64)
    if belief.objective == "deadline":
        return float(belief.priority[pending].sum()) / belief.total_priority
    if belief.objective == "allocation":
        return float(np.where(belief.cpu_only[pending], 0.0, belief.gpu[pending]).sum()) / belief.total_gpu
    return None


class RolloutEnv:
    def __init__(self, nodes: int, window: int, objective: str, observe: bool, env_options: dict[str, Any]):
        options = dict(env_options)
        prior = options.pop(PRIOR_OPTION, None)
        config = {"nodes": nodes, "window": window, "objective": objective, "observe": observe}
        self.base_env = _BeliefEnv(config | options)
        self.env: _BeliefEnv | TeacherPrior = (
            TeacherPrior(self.base_env, prior) if prior and observe else self.base_env
        )
        """What the base plays in: with the teacher's choice in every observation when the
        base is a learned policy trained with a `prior`, as in its own episodes."""
        self.belief: BeliefEngine | None = None
        self.ceiling: float | None = None
        """The most any rollout from the current belief can earn, where it is known (see
        `ceiling_of`)."""
        self._samples: list[tuple[EngineState, np.ndarray]] = []
        self.steps = 0
        """Env steps played by rollouts since the env was made (for the cost figures)."""

    def start(
        self, belief: BeliefEngine, runtimes: list[tuple[np.ndarray, dict[int, float]]] | None = None
    ) -> None:
        """Make `belief` (at a decision point) the state every rollout starts from; each of
        `runtimes` (runtimes and running jobs' ends: `sampled_runtimes`) is a sample of it,
        the belief as it is the only one without."""
        self.belief = belief
        self.ceiling = ceiling_of(belief)
        self.env.attach(belief)
        saved = belief.snapshot()
        self._samples = [(saved, belief.runtime.copy())]
        if runtimes:
            self._samples = []
            for runtime, ends in runtimes:
                events = [(ends[job], seq, kind, job, attempt) for _, seq, kind, job, attempt in saved.events]
                heapq.heapify(events)
                self._samples.append((dataclasses.replace(saved, events=events), runtime))

    @property
    def samples(self) -> int:
        return len(self._samples)

    @property
    def wait_allowed(self) -> bool:
        return self.base_env.wait_allowed

    def value(self, action: int, policy: Policy, horizon: int | None, sample: int = 0) -> float:
        """Reward of playing `action`, then `policy` for up to `horizon` more decisions
        (to the end of the belief if None), from the decision point of `sample`."""
        assert self.belief is not None, "call start() first"
        env = self.env
        saved, runtime = self._samples[sample]
        self.belief.restore(saved)
        np.copyto(self.belief.runtime, runtime)
        env.attach(self.belief)
        _, total, terminated, truncated, _ = env.step(action)
        played = 0
        while not (terminated or truncated) and (horizon is None or played < horizon):
            _, reward, terminated, truncated, _ = env.step(policy.act(env.decision_view()))
            total += reward
            played += 1
        self.steps += played + 1
        return float(total)
