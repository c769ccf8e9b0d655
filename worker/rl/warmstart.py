"""Behaviour-cloning warm start: PPO begins where a strong heuristic already is.

From scratch, PPO spends most of a 15-minute budget rediscovering what `tuned` knows
(shortest or tightest job first, on the fastest GPU that still meets its deadline), and
on 2 cores it often runs out of budget before it passes it. Cloning the teacher first
(cross-entropy on its decisions under the env's mask, and the value head regressed on
the teacher's discounted returns, so the first PPO advantages are not noise) starts
PPO at the teacher's level and leaves the budget for improving on it.

Demonstrations come from training seeds only (`TRAINING_SEED_OFFSET` and above, in a
range of their own): no evaluation episode and no held-out file is ever cloned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns

from worker.rl.config import TRAINING_SEED_OFFSET
from worker.sim.heuristics import TUNED, make_heuristic
from worker.sim.heuristics.tuned import make_tuned, tuning_spec
from worker.sim.teacher import make_env
from worker.sim.workloads import WorkloadSpec, make_scenario

logger = logging.getLogger(__name__)

DEMO_SEED_OFFSET = TRAINING_SEED_OFFSET + 2**30
"""Demonstration episodes: training seeds, apart from the PPO sampler's and tuning's."""


@dataclass(frozen=True)
class Demonstrations:
    obs: dict[str, np.ndarray]
    """Stacked observations, one row per decision."""
    actions: np.ndarray
    returns: np.ndarray
    """Discounted return-to-go of each decision under the teacher."""
    teacher: str

    def __len__(self) -> int:
        return len(self.actions)


@dataclass(frozen=True)
class CloneReport:
    teacher: str
    samples: int
    accuracy: float
    """Share of demonstration decisions the cloned policy's greedy action matches."""
    loss: float


def collect(
    spec: WorkloadSpec,
    window: int,
    teacher: str,
    episodes: int,
    seed: int,
    gamma: float,
    objective: str = "deadline",
    prior: str | None = None,
    backfilling: bool = True,
) -> Demonstrations:
    """Roll the teacher out on training episodes of `spec` and record its decisions."""
    train_spec = tuning_spec(spec)  # a held-out trace's training split, never the file itself
    policy = make_tuned(spec, window, objective) if teacher == TUNED else make_heuristic(teacher)
    name = getattr(getattr(policy, "choice", None), "choice", teacher)
    config = {"nodes": spec.nodes, "window": window, "objective": objective, "prior": prior}
    env = make_env(config | {"backfilling": backfilling})
    rows: dict[str, list[np.ndarray]] = {}
    actions: list[int] = []
    returns: list[float] = []
    for episode in range(episodes):
        episode_seed = DEMO_SEED_OFFSET + seed * 100_003 + episode
        env.load_scenario(make_scenario(train_spec, episode_seed), episode_seed)
        policy.reset(episode_seed)
        rewards: list[float] = []
        done = False
        while not done:
            view = env.decision_view()
            action = int(policy.act(view))
            assert view.obs is not None
            if view.obs["action_mask"][action] > 0.5:  # WAIT when WAIT is masked is replaced by the env
                for key, value in view.obs.items():
                    rows.setdefault(key, []).append(value)
                actions.append(action)
                rewards.append(0.0)
            _, reward, terminated, truncated, _ = env.step(action)
            if rewards:
                rewards[-1] += reward
            done = terminated or truncated
        to_go, running = np.zeros(len(rewards)), 0.0
        for i in range(len(rewards) - 1, -1, -1):
            running = rewards[i] + gamma * running
            to_go[i] = running
        returns.extend(to_go)
    return Demonstrations(
        {k: np.stack(v) for k, v in rows.items()},
        np.asarray(actions, dtype=np.int64),
        np.asarray(returns, dtype=np.float32),
        name,
    )


def behaviour_clone(
    module: torch.nn.Module,
    demos: Demonstrations,
    epochs: int = 4,
    batch_size: int = 256,
    lr: float = 1e-3,
    value_weight: float = 0.5,
    seed: int = 0,
) -> CloneReport:
    """Fit the module's policy to the teacher's actions and its value to their returns."""
    generator = torch.Generator().manual_seed(seed)
    obs = {k: torch.from_numpy(v) for k, v in demos.obs.items()}
    actions = torch.from_numpy(demos.actions)
    returns = torch.from_numpy(demos.returns)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    n = len(demos)
    loss_value = 0.0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            batch = {k: v[idx] for k, v in obs.items()}
            logits = module.masked_logits(batch)
            values = module.compute_values({Columns.OBS: batch})
            loss = F.cross_entropy(logits, actions[idx]) + value_weight * F.mse_loss(values, returns[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_value = float(loss.detach())
    with torch.no_grad():
        hits = 0
        for start in range(0, n, 1024):
            batch = {k: v[start : start + 1024] for k, v in obs.items()}
            hits += int((module.masked_logits(batch).argmax(-1) == actions[start : start + 1024]).sum())
    return CloneReport(demos.teacher, n, hits / max(n, 1), loss_value)


def warm_start_algorithm(algo, spec: WorkloadSpec, window: int, teacher: str, episodes: int, seed: int,
                         gamma: float, objective: str, prior: str | None = None,
                         backfilling: bool = True) -> CloneReport:  # fmt: skip
    """Clone `teacher` into the algorithm's learner module and push the weights to the
    env runners, before the first PPO iteration."""
    module = algo.learner_group._learner.module["default_policy"]
    demos = collect(spec, window, teacher, episodes, seed, gamma, objective, prior, backfilling)
    report = behaviour_clone(module, demos, seed=seed)
    algo.env_runner_group.sync_weights(from_worker_or_learner_group=algo.learner_group, inference_only=True)
    logger.info(
        "warm start: cloned %s on %d decisions, accuracy %.3f",
        report.teacher,
        report.samples,
        report.accuracy,
    )
    return report
