"""Metrics that cross from the worker to the app: a PPO iteration's learner metrics and
a simulated episode's (or plan's) scheduling metrics. The app stores them as rows; the
simulator computes them as dataclasses; both convert through these models."""

from __future__ import annotations

from worker.contracts.ids import Model


class LearnerMetrics(Model):
    """One PPO iteration's learner metrics: what the training activity heartbeats
    (IterationProgress) and what the app stores per iteration (app.models.IterationMetric,
    written from exactly these fields)."""

    iterations_in_round: int = 0
    env_steps: int = 0
    env_steps_per_second: float | None = None
    episode_return_mean: float | None = None
    episode_score_mean: float | None = None
    policy_loss: float | None = None
    vf_loss: float | None = None
    entropy: float | None = None
    kl: float | None = None
    distill_cross_entropy: float | None = None
    """A distilling run's imitation loss: cross-entropy of the policy to the search's targets."""
    distill_value_loss: float | None = None
    """Its value term: squared error of the value to the labelled discounted returns."""
    distill_agreement: float | None = None
    """Share of labelled decisions where the policy's greedy action is the target's likeliest."""
    distill_episodes: int | None = None
    """Labelled episodes the learner imitates this round (the label step's output)."""
    distill_decisions: int | None = None
    """Labelled decisions among them (rows of the round's labels)."""


class IterationProgress(LearnerMetrics):
    """One PPO iteration, as heartbeated by the training activity."""

    iteration: int
    checkpoint: str | None = None
    """Set when this iteration was checkpointed: the newest resumable state."""


class PlanMetrics(Model):
    """Metrics of one simulated episode or plan: the fields of the simulator's
    EpisodeMetrics (worker/sim/metrics.py) that cross Temporal, converted in one place
    (worker/convert.py's plan_metrics, by these field names)."""

    score: float
    mean_bounded_slowdown: float
    p95_bounded_slowdown: float
    mean_wait: float
    gpu_utilization: float
    cpu_utilization: float
    makespan: float
    jobs_finished: int
    deadline_misses: int
    unschedulable: int


class PolicyMetrics(PlanMetrics):
    """A policy's metrics averaged over evaluation episodes: counts become means."""

    policy: str
    jobs_finished: float
    deadline_misses: float = 0.0
    unschedulable: float = 0.0
