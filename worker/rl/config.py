"""PPO hyper-parameters as one documented dataclass, and their translation to RLlib.

Defaults are tuned for the 2-core machine this project targets (figures from
benchmarks/train_throughput.py, steady, 16 nodes x 32 window, on a machine shared with
other work, see the fields' docs):
- 128 envs sampled in the driver (no remote env runners): RLlib's per-step overhead
  (connectors, episode bookkeeping) dominates sampling, the env alone does ~30,000
  steps/s, and that overhead is per call, so a wide vector of envs amortises it;
- 2 epochs of 1,024-sample minibatches over 4,096 steps and a small model (hidden 32)
  keep the learner at ~0.5 s per iteration on one thread;
- one torch thread in the learner: two give ~4,500 steps/s on an idle machine but learn
  ~4x slower as soon as another process takes a core (see `torch_threads`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from worker.rl.module import PairScoringModule
from worker.sim.env import SchedulingEnv
from worker.sim.teacher import make_env
from worker.sim.workloads import WorkloadSpec, make_scenario


@dataclass
class PPOHyperparams:
    """Everything about PPO and the model a training run may change (CleanRL's Args)."""

    lr: float = 5e-4
    """Adam learning rate (linearly decayed to `lr_final` over `lr_decay_steps` env steps)."""
    lr_final: float | None = 1e-4
    """Learning rate at the end of the decay; None keeps `lr` constant."""
    lr_decay_steps: int = 3_000_000
    """Lifetime env steps over which lr goes from `lr` to `lr_final`."""
    gamma: float = 0.995
    """Discount per decision. Reward is paid when a job starts, so long horizons matter:
    a placement's cost shows up as later jobs that no longer fit."""
    lambda_: float = 0.95
    """GAE lambda: bias/variance trade-off of the advantage estimate."""
    entropy_coeff: float = 0.003
    """Entropy bonus; small because the action space has up to K*N+1 = 513 actions."""
    clip_param: float = 0.2
    """PPO surrogate clip range."""
    vf_loss_coeff: float = 0.5
    """Weight of the value loss in the shared-embedding total loss."""
    vf_clip_param: float = 10.0
    """Clip of the squared value error (returns are in [0, 1], so effectively none)."""
    grad_clip: float | None = 0.5
    """Global gradient-norm clip."""
    kl_coeff: float = 0.0
    """Initial KL penalty weight. 0 (as in CleanRL's PPO) still measures and reports the
    policy's KL per iteration: RLlib only computes it when the KL loss is on."""
    kl_target: float = 0.01
    """Target KL the adaptive penalty steers towards when `kl_coeff` > 0."""
    train_batch_size: int = 4_096
    """Env steps per training iteration."""
    minibatch_size: int = 1_024
    """SGD minibatch size."""
    num_epochs: int = 2
    """Passes over each batch."""
    num_envs_per_env_runner: int = 128
    """Vectorised envs per runner, stepped together: one module forward and one pass of
    RLlib's connectors per 128 decisions. Their per-call overhead dominates sampling, so
    more envs per step is the cheapest speed-up (sampling alone, one process: 16 envs
    ~1,400-1,800 steps/s, 64 envs ~2,900-3,700)."""
    num_env_runners: int = 0
    """Remote sampling actors (one CPU each; clamped to the Ray cluster's CPUs). 0 samples
    in the learner's process: no episode transfer through Ray's object store and no
    actors competing for 2 cores. Measured back to back on the shared 2-core machine
    (benchmarks/train_throughput.py): 0 runners x 128 envs ~1,650-1,730 steps/s, 2 x 64
    ~1,210, 2 x 16 (the old default) ~940-1,160."""
    embed_dim: int = 32
    """Job and node embedding size."""
    hidden: int = 32
    """Hidden width of every small MLP in the module (64 learns no better on the presets
    and makes the learner ~25% slower)."""
    pair_hidden: int = 0
    """Width of an optional per-pair MLP term (0 = off: ~4x slower learner)."""
    warm_start: str | None = None
    """Clone this heuristic (`tuned` or any heuristic name) into the policy and value
    before the first iteration of a fresh run (worker/rl/warmstart.py); None starts PPO
    from random weights."""
    warm_start_episodes: int = 16
    """Training episodes of the teacher to clone."""
    prior: str | None = None
    """A teacher heuristic (`tuned` or any heuristic name) whose choice the policy's logits
    add `prior_weight` to (worker/rl/module.py): PPO learns a correction to the teacher
    rather than a policy from nothing. `tuned` is resolved to its composition for the
    workload when the round starts, and the checkpoint keeps that name, so the policy
    runs with the same teacher on any cluster."""
    prior_weight: float = 3.0
    """Initial weight of the teacher's action (learned). At 3 the untrained policy samples
    the teacher's action about half the time among ~20 valid ones, and always greedily."""
    backfilling: bool = True
    """False: each decision picks the next job to start, whether it fits now or not, and
    nothing else starts before it (RLScheduler's setting without backfilling; the env's
    `backfilling` option). A property of the policy's actions, so the checkpoint keeps it."""
    distill_weight: float = 0.0
    """Weight of the distillation term added to PPO's loss on every minibatch: cross-entropy
    of the policy to a search's soft targets plus `vf_loss_coeff` x the value's squared
    error to the labelled returns (worker/rl/distill.py). 0 is plain PPO, bit for bit;
    1 weighs the imitation like PPO's own policy loss."""
    distill_labels: str | None = None
    """Local directory of the round's search-labelled decisions (worker/rl/labels.py);
    needed when `distill_weight` > 0."""
    distill_batch_size: int = 256
    """Labelled decisions drawn per PPO minibatch for the distillation term."""
    torch_threads: int = 1
    """Torch intra-op threads of the learner (this process, during a round). On 2 cores,
    2 threads learn ~1.4x faster on an idle machine but ~4x slower as soon as another
    process takes a core (OpenMP spin-waits); 1 degrades gracefully."""
    seed: int = 0
    """Seeds RLlib, torch and the env runners' episode draws."""

    def model_config(self) -> dict[str, Any]:
        return {
            "embed_dim": self.embed_dim,
            "hidden": self.hidden,
            "pair_hidden": self.pair_hidden,
            "prior": self.prior,
            "prior_weight": self.prior_weight,
            "backfilling": self.backfilling,
        }


@dataclass
class TrainRoundConfig:
    """One training round: what to train on, for how long, with what, and where to save."""

    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    """Workload the training episodes are drawn from (preset or trace, nodes, load, jobs)."""
    objective: str = "deadline"
    """What the reward pays (worker/sim/objectives.py)."""
    window: int = 32
    """Waiting jobs the policy sees per decision (K)."""
    iterations: int = 10
    """PPO iterations in this round (each of `ppo.train_batch_size` env steps)."""
    ppo: PPOHyperparams = field(default_factory=PPOHyperparams)
    """Algorithm hyper-parameters."""
    seed: int = 0
    """Round seed: mixed with the iteration a round starts at, so a resumed run draws
    fresh episodes instead of replaying the first round's."""
    output_dir: str = "checkpoints"
    """Checkpoints of this round go to fresh subdirectories `iter-NNNNNN` under here."""
    save_every: int | None = None
    """Also checkpoint every this many iterations (the last one is always saved)."""
    save_start: bool = False
    """Also checkpoint a fresh run before its first iteration (the warm-started policy, a
    clone of its teacher), so checkpoint selection may keep where training started."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SCORE_METRIC = "episode_score"
"""Custom env-runner metric: the headline score of each finished episode."""


class EpisodeScoreCallback(RLlibCallback):
    """Logs the env's episode score (and GPU utilisation) next to the return.

    The undiscounted return equals the score only for terminated episodes; truncated
    ones (horizon reached) differ, so the score is read from the env's final info.
    """

    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        if metrics_logger is None:
            return
        info = episode.get_infos(-1)
        metrics = info.get("metrics") if isinstance(info, dict) else None
        if metrics is None:
            return
        metrics_logger.log_value(SCORE_METRIC, float(metrics.score), reduce="mean", window=100)
        metrics_logger.log_value(
            "episode_gpu_utilization", float(metrics.gpu_utilization), reduce="mean", window=100
        )


TRAINING_SEED_OFFSET = 2**32
"""Training scenarios come from seeds >= 2**32; evaluation seeds (worker.sim.evaluate's
`episode_seeds`) are uint32, so no evaluation episode is ever a training episode."""


class TrainingEnv(gym.Wrapper):
    """What RLlib builds from its env_config dict: the env (with the config's teacher, if
    it names a `prior`), whose scenarios are drawn from the training seed range."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(make_env(config))
        base = self.unwrapped
        assert isinstance(base, SchedulingEnv)
        self._workload = base.spec_workload
        self._scenario_seeds = np.random.default_rng(base.config.seed)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        options = dict(options or {})
        if "scenario" not in options:
            if seed is not None:
                self._scenario_seeds = np.random.default_rng(seed)
            scenario_seed = TRAINING_SEED_OFFSET + int(self._scenario_seeds.integers(2**31 - 1))
            options["scenario"] = make_scenario(self._workload, scenario_seed)
            options.setdefault("sim_seed", scenario_seed)
        return self.env.reset(seed=seed, options=options)


def env_config(
    workload: WorkloadSpec,
    window: int,
    seed: int = 0,
    objective: str = "deadline",
    prior: str | None = None,
    backfilling: bool = True,
) -> dict[str, Any]:
    return {
        "objective": objective,
        "workload": workload.name,
        "nodes": workload.nodes,
        "load": workload.load,
        "jobs": workload.jobs,
        "window": window,
        "seed": seed,
        "prior": prior,
        "backfilling": backfilling,
    }


def resolve_prior(cfg: TrainRoundConfig) -> TrainRoundConfig:
    """`prior: tuned` as the composition `tuned` picks for the round's workload (chosen on
    training seeds), so env, module and checkpoint all name a concrete heuristic."""
    from worker.sim.heuristics import TUNED
    from worker.sim.heuristics.tuned import tuned_choice

    if cfg.ppo.prior != TUNED:
        return cfg
    name = tuned_choice(cfg.workload, cfg.window, cfg.objective).choice
    return replace(cfg, ppo=replace(cfg.ppo, prior=name))


def _lr_schedule(ppo: PPOHyperparams) -> float | list[list[float]]:
    if ppo.lr_final is None:
        return ppo.lr
    return [[0, ppo.lr], [ppo.lr_decay_steps, ppo.lr_final]]


def build_ppo_config(cfg: TrainRoundConfig, seed: int | None = None) -> PPOConfig:
    """RLlib PPOConfig for a round; `seed` overrides `cfg.seed` (resumed rounds)."""
    from worker.rl.distill import (
        LEARNER_CONFIG_KEY,
        DistillPPOLearner,
    )  # it imports the labels, which import this

    ppo = cfg.ppo
    seed = cfg.seed if seed is None else seed
    distill = {
        "weight": ppo.distill_weight,
        "labels": ppo.distill_labels,
        "batch_size": ppo.distill_batch_size,
    }
    return (
        PPOConfig()
        .api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        # The action space is Discrete: nothing to unsquash or clip, and with either on
        # RLlib deep-copies every action batch (~5% of sampling time).
        .environment(
            TrainingEnv,
            env_config=env_config(cfg.workload, cfg.window, seed, cfg.objective, ppo.prior, ppo.backfilling),
            normalize_actions=False,
            clip_actions=False,
        )
        .framework("torch")
        .env_runners(
            num_env_runners=ppo.num_env_runners,
            num_envs_per_env_runner=ppo.num_envs_per_env_runner,
            num_cpus_per_env_runner=1,
            rollout_fragment_length="auto",
            # The module reads the Dict observation as is; RLlib's defaults only batch
            # and tensorise it. Nothing else is added, so inference needs no connector.
            add_default_connectors_to_env_to_module_pipeline=True,
        )
        .learners(
            num_learners=0,
            num_gpus_per_learner=0,
            learner_class=DistillPPOLearner,
            learner_config_dict={LEARNER_CONFIG_KEY: distill},
        )
        # A lost env runner fails the iteration instead of being restarted in place: the
        # training activity's retry resumes from the last checkpoint, and Ray does not
        # log an error per build about restartable actors' arguments.
        .fault_tolerance(restart_failed_env_runners=False)
        .rl_module(
            rl_module_spec=RLModuleSpec(module_class=PairScoringModule, model_config=ppo.model_config())
        )
        .training(
            lr=_lr_schedule(ppo),
            gamma=ppo.gamma,
            lambda_=ppo.lambda_,
            entropy_coeff=ppo.entropy_coeff,
            clip_param=ppo.clip_param,
            vf_loss_coeff=ppo.vf_loss_coeff,
            vf_clip_param=ppo.vf_clip_param,
            grad_clip=ppo.grad_clip,
            use_kl_loss=True,
            kl_coeff=ppo.kl_coeff,
            kl_target=ppo.kl_target,
            train_batch_size_per_learner=ppo.train_batch_size,
            minibatch_size=ppo.minibatch_size,
            num_epochs=ppo.num_epochs,
        )
        .callbacks(EpisodeScoreCallback)
        .reporting(metrics_num_episodes_for_smoothing=100)
        .debugging(seed=seed, log_level="ERROR")
    )
