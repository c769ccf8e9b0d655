"""One training round: build PPO, optionally resume, iterate, checkpoint, always stop.

A round is what the Temporal training activity runs: it may be cut short (`should_stop`)
or killed and retried, so progress lives in checkpoints. Every checkpoint is a fresh
directory `iter-NNNNNN` (the global iteration), never overwritten in place, so the one a
heartbeat names stays valid while the next is written. The iteration counter and the
lifetime env-step count are part of RLlib's algorithm state (restored by
`restore_from_path`) and are also written to `rlsched.json` beside it, where tools can
read them without loading RLlib.

Nothing is cached across rounds: each round builds its own Algorithm and stops it in
`finally` (lingering actors hold CPUs and stall the next build on 2 cores).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from worker.contracts import IterationProgress
from worker.rl.config import SCORE_METRIC, TrainRoundConfig, build_ppo_config, resolve_prior
from worker.rl.distill import AGREEMENT_KEY, CROSS_ENTROPY_KEY, DECISIONS_KEY, EPISODES_KEY, VALUE_LOSS_KEY
from worker.rl.runtime import ensure_ray
from worker.settings import WorkerSettings, get_settings

logger = logging.getLogger(__name__)

warnings.filterwarnings("ignore", message=r".*Overriding environment rllib-single-agent-env")
"""Every Algorithm build re-registers RLlib's env wrapper with gymnasium; harmless."""

LIFETIME_STEPS = ("env_runners", "num_env_steps_sampled_lifetime")
METADATA_FILE = "rlsched.json"
"""Our own summary written into every checkpoint directory."""


@dataclass
class RoundResult:
    checkpoint: str
    iteration: int
    env_steps: int
    episode_return_mean: float | None
    episode_score_mean: float | None
    elapsed_s: float
    stopped_early: bool = False
    history: list[IterationProgress] = field(default_factory=list)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _count(value: Any) -> int | None:
    number = _finite(value)
    return None if number is None else round(number)


def _progress(result: dict[str, Any], iteration: int, in_round: int, steps_per_s: float) -> IterationProgress:
    runners = result.get("env_runners", {})
    learner = result.get("learners", {}).get("default_policy", {})
    return IterationProgress(
        iteration=iteration,
        iterations_in_round=in_round,
        env_steps=int(runners.get("num_env_steps_sampled_lifetime", 0)),
        env_steps_per_second=steps_per_s,
        episode_return_mean=_finite(runners.get("episode_return_mean")),
        episode_score_mean=_finite(runners.get(SCORE_METRIC)),
        policy_loss=_finite(learner.get("policy_loss")),
        vf_loss=_finite(learner.get("vf_loss")),
        entropy=_finite(learner.get("entropy")),
        kl=_finite(learner.get("mean_kl_loss")),
        distill_cross_entropy=_finite(learner.get(CROSS_ENTROPY_KEY)),
        distill_value_loss=_finite(learner.get(VALUE_LOSS_KEY)),
        distill_agreement=_finite(learner.get(AGREEMENT_KEY)),
        distill_episodes=_count(learner.get(EPISODES_KEY)),
        distill_decisions=_count(learner.get(DECISIONS_KEY)),
    )


SMOOTHED = ("episode_return_mean", "episode_score_mean")


def _carry_smoothed(progress: IterationProgress, previous: dict[str, float | None]) -> IterationProgress:
    """RLlib reports its means over the last 100 episodes only in iterations where some
    episode ended; with 128 envs that finish ~500-step episodes together, most iterations
    have none. The window has not moved then, so its last value still holds: carried
    forward, progress and history show a curve instead of mostly gaps."""
    missing = {
        key: previous[key]
        for key in SMOOTHED
        if getattr(progress, key) is None and previous.get(key) is not None
    }
    for key in SMOOTHED:
        if getattr(progress, key) is not None:
            previous[key] = getattr(progress, key)
    return progress.model_copy(update=missing) if missing else progress


def read_metadata(checkpoint: str | Path) -> dict[str, Any]:
    """Our summary of a checkpoint ({} if it has none, e.g. written by plain RLlib)."""
    path = Path(checkpoint) / METADATA_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save(algo: Any, config: TrainRoundConfig, progress: IterationProgress | None) -> str:
    iteration = int(algo.iteration)
    path = Path(config.output_dir).resolve() / f"iter-{iteration:06d}"
    if path.exists():  # a retried attempt re-reaching the same iteration
        shutil.rmtree(path)
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _write_checkpoint(algo, config, progress, iteration, partial)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)  # never leave half a checkpoint behind
        if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise CheckpointSaveError(
                f"no space left to save the checkpoint of iteration {iteration} to {path} "
                f"({error.strerror}); free space there: the round retries from its last saved "
                "checkpoint"
            ) from error
        raise CheckpointSaveError(
            f"cannot save the checkpoint of iteration {iteration} to {path}: {error}"
        ) from error
    partial.rename(path)  # a reader never sees a half-written checkpoint under its name
    return str(path)


class CheckpointSaveError(OSError):
    """Saving a checkpoint failed (full disk, lost mount). Retryable: the activity fails,
    Temporal retries it, and the retry resumes from the last checkpoint that was saved."""


def _write_checkpoint(
    algo: Any, config: TrainRoundConfig, progress: IterationProgress | None, iteration: int, partial: Path
) -> None:
    algo.save_to_path(str(partial))
    meta = {
        "iteration": iteration,
        "env_steps": progress.env_steps if progress else 0,
        "episode_score_mean": progress.episode_score_mean if progress else None,
        "module": "worker.rl.module.PairScoringModule",
        "window": config.window,
        "workload": asdict(config.workload),
        "ppo": asdict(config.ppo),
        "saved_at": time.time(),
    }
    (partial / METADATA_FILE).write_text(json.dumps(meta, indent=2))


def _round_seed(config: TrainRoundConfig, start_iteration: int) -> int:
    """Fresh episodes for a resumed round: mix the start iteration into the seed."""
    return (config.seed * 1_000_003 + start_iteration * 7_919) % (2**31 - 1)


def env_runners_for(requested: int, settings: WorkerSettings, cluster_cpus: int) -> int:
    """How many remote env runners a round uses: RLSCHED_ENV_RUNNERS when set; on an
    attached cluster (RAY_ADDRESS) with none requested, one per cluster CPU; else as
    requested (0 by default: sampling in the worker's process)."""
    if settings.env_runners is not None:
        return settings.env_runners
    if settings.ray_address and requested == 0:
        return cluster_cpus
    return requested


def _fit_runners_to_cluster(config: TrainRoundConfig, settings: WorkerSettings) -> TrainRoundConfig:
    """Remote env runners take one CPU each; asking for more than the cluster has would
    block the build forever, so fall back to fewer (or sampling in the driver)."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 0))
    runners = env_runners_for(config.ppo.num_env_runners, settings, cpus)
    if runners != config.ppo.num_env_runners:
        config = replace(config, ppo=replace(config.ppo, num_env_runners=runners))
    if runners <= cpus:
        return config
    fitted = cpus if cpus >= 2 else 0
    logger.warning("Ray has %d CPUs: using %d env runners instead of %d", cpus, fitted, runners)
    return replace(config, ppo=replace(config.ppo, num_env_runners=fitted))


def train_round(
    config: TrainRoundConfig,
    resume_from: str | None = None,
    on_iteration: Callable[[IterationProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    settings: WorkerSettings | None = None,
) -> RoundResult:
    """Run `config.iterations` PPO iterations (fewer if `should_stop()` turns true) and
    return the final checkpoint. Raises CheckpointError for an unusable `resume_from`."""
    from worker.rl.inference import CheckpointError, validate_algorithm_checkpoint

    settings = settings or get_settings()
    ensure_ray(settings)
    start_iteration = 0
    resumed: dict[str, Any] = {}
    if resume_from is not None:
        validate_algorithm_checkpoint(resume_from)
        resumed = read_metadata(resume_from)
        start_iteration = int(resumed.get("iteration", 0))
    Path(config.output_dir).mkdir(parents=True, exist_ok=True)

    config = resolve_prior(_fit_runners_to_cluster(config, settings))
    started = time.monotonic()
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, config.ppo.torch_threads))
    algo = None
    history: list[IterationProgress] = []
    checkpoint: str | None = None
    last: IterationProgress | None = None
    stopped_early = False
    smoothed: dict[str, float | None] = {"episode_score_mean": resumed.get("episode_score_mean")}
    try:
        algo = build_ppo_config(config, seed=_round_seed(config, start_iteration)).build_algo()
        if resume_from is not None:
            try:
                algo.restore_from_path(str(Path(resume_from).resolve()))
            except Exception as error:
                raise CheckpointError(
                    f"cannot resume from {resume_from}: {type(error).__name__}: {error}"
                ) from error
        elif config.ppo.warm_start:
            from worker.rl.warmstart import warm_start_algorithm

            warm_start_algorithm(
                algo,
                config.workload,
                config.window,
                config.ppo.warm_start,
                config.ppo.warm_start_episodes,
                config.seed,
                config.ppo.gamma,
                config.objective,
                config.ppo.prior,
                config.ppo.backfilling,
            )
        if config.save_start and resume_from is None:
            _save(algo, config, None)
        for in_round in range(1, config.iterations + 1):
            if should_stop is not None and should_stop():
                stopped_early = True
                break
            tick = time.perf_counter()
            before = int(algo.metrics.peek(LIFETIME_STEPS, default=0))
            result = algo.train()
            elapsed = time.perf_counter() - tick
            last = _carry_smoothed(_progress(result, int(algo.iteration), in_round, 0.0), smoothed)
            last.env_steps_per_second = (last.env_steps - before) / max(elapsed, 1e-9)
            due = bool(config.save_every) and in_round % config.save_every == 0
            if due or in_round == config.iterations:
                # Saved before it is reported, so a heartbeat never names an iteration
                # whose checkpoint might not exist.
                checkpoint = last.checkpoint = _save(algo, config, last)
            history.append(last)
            if on_iteration is not None:
                on_iteration(last)
        if last is None and resume_from is not None:
            checkpoint = str(Path(resume_from).resolve())  # nothing new to save
        elif last is None or last.checkpoint is None:
            checkpoint = _save(algo, config, last)
        final_iteration = int(algo.iteration)
    finally:
        if algo is not None:
            logdir = getattr(algo, "logdir", None)
            algo.stop()
            if logdir:
                shutil.rmtree(logdir, ignore_errors=True)
        torch.set_num_threads(threads)
    assert checkpoint is not None
    return RoundResult(
        checkpoint=checkpoint,
        iteration=final_iteration,
        env_steps=last.env_steps if last else int(read_metadata(checkpoint).get("env_steps", 0)),
        episode_return_mean=last.episode_return_mean if last else None,
        episode_score_mean=last.episode_score_mean if last else None,
        elapsed_s=time.monotonic() - started,
        stopped_early=stopped_early,
        history=history,
    )
