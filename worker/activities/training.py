"""train_policy and store_checkpoint: one PPO round, durable across worker crashes.

Why it looks like this:
- A sync `def` on a thread pool: RLlib's training loop is blocking, CPU-bound code.
  The training worker runs at most one at a time (`max_concurrent_activities=1`).
- After every iteration it heartbeats a `TrainingHeartbeat` (iterations done in the
  round, the latest checkpoint, the iteration's metrics). Temporal keeps the last
  heartbeat across attempts, so when a worker dies mid-round the retry (on any worker)
  restores that checkpoint and trains only the iterations still missing: the iteration
  count continues, nothing is repeated twice or lost.
- A liveness thread re-sends the last heartbeat every few seconds, so the heartbeat
  timeout only has to cover a dead process, not the longest iteration or the time it
  takes to build the algorithm.
- With a remote artifact store (s3://...) every checkpoint is uploaded *before* it is
  heartbeated, so a heartbeat only ever names an object already in the store: the retry
  of a crashed attempt may be scheduled on any training worker, on any machine, and a
  local path would mean nothing there. An upload that fails mid-round does not fail the
  round: training goes on and the heartbeat names the local checkpoint (still good for a
  retry on this machine); only the round's final upload must succeed, and its failure is
  a retryable error whose retry resumes from the heartbeat and uploads again.
- Cancellation reaches a threaded activity as an exception thrown into its thread; the
  whole round runs inside `shield_thread_cancel_exception()` so that exception waits
  until RLlib is between iterations, the checkpoint is saved and the algorithm stopped
  (`should_stop`), and only then surfaces.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from worker.activities import (
    ARTIFACT_STORE_ERROR,
    WORKER_SHUTDOWN,
    Heartbeater,
    checkpoint_error,
    liveness_interval,
    policy_errors,
)
from worker.contracts import (
    IterationProgress,
    StoreCheckpointInput,
    StoredCheckpoint,
    TrainingHeartbeat,
    TrainRoundInput,
    TrainRoundOutput,
    is_store_uri,
    keep_history,
)


def last_heartbeat(round_: int) -> TrainingHeartbeat | None:
    """This round's last heartbeat from an earlier attempt (it arrives as a dict)."""
    details = activity.info().heartbeat_details
    if not details:
        return None
    try:
        beat = TrainingHeartbeat.model_validate(details[0])
    except ValueError:
        activity.logger.warning("ignoring unreadable heartbeat details %r", details[0])
        return None
    return beat if beat.round == round_ else None


@activity.defn(name="train_policy")
def train_policy(input: TrainRoundInput) -> TrainRoundOutput:
    from worker import artifacts
    from worker.convert import distill_hyperparams, iteration_progress, ppo_hyperparams, workload_spec
    from worker.metrics import TRAINING_ITERATIONS, TRAINING_ROUNDS
    from worker.rl.config import TrainRoundConfig
    from worker.rl.runtime import ensure_ray
    from worker.rl.train import train_round
    from worker.settings import get_settings

    settings = get_settings()
    config = input.config
    target = config.iterations_per_round
    local_dir, final = artifacts.resolve_output(settings, input.output_dir)
    uploads = _Uploads(settings, final)

    resume_from, done, last = input.resume_from, 0, None
    history: list[IterationProgress] = []
    prior = last_heartbeat(input.round)
    if prior is not None and prior.checkpoint:
        try:
            artifacts.ensure_local(settings, prior.checkpoint)
            resume_from, done, last = prior.checkpoint, prior.iterations_done, prior.progress
            history = [p for p in prior.history if p.iterations_in_round <= done]
            activity.logger.info(
                "round %d resumes at iteration %d/%d from %s", input.round, done, target, resume_from
            )
        except FileNotFoundError:
            activity.logger.warning(
                "round %d: heartbeat checkpoint %s is not on this worker; restarting the round",
                input.round,
                prior.checkpoint,
            )
        except OSError as error:
            raise store_unavailable(prior.checkpoint, error) from error
    if done >= target and resume_from:  # trained by an earlier attempt; its upload may have failed
        checkpoint = uploads.final(resume_from)
        uploads.prune(checkpoint, local_dir)
        return _output(checkpoint, last, history, elapsed_s=0.0)

    try:
        resume_local = str(artifacts.ensure_local(settings, resume_from)) if resume_from else None
    except FileNotFoundError as error:
        raise checkpoint_error(error) from error
    except OSError as error:
        raise store_unavailable(resume_from or "", error) from error
    try:
        labels_local = str(artifacts.ensure_local(settings, input.labels)) if input.labels else None
    except FileNotFoundError as error:
        raise checkpoint_error(error) from error
    except OSError as error:
        raise store_unavailable(input.labels or "", error) from error
    round_config = TrainRoundConfig(
        workload=workload_spec(config.workload),
        objective=config.objective,
        window=config.workload.window,
        iterations=target - done,
        ppo=distill_hyperparams(ppo_hyperparams(config.ppo, seed=config.seed), config.ppo, labels_local),
        seed=round_seed(config.seed, input.round),
        output_dir=str(local_dir),
        save_every=config.checkpoint_every,
    )

    def heartbeat(checkpoint: str | None) -> TrainingHeartbeat:
        return TrainingHeartbeat(
            round=input.round, progress=last, checkpoint=checkpoint, iterations_done=done, history=history
        )

    started = time.monotonic()
    with Heartbeater(heartbeat(resume_from), liveness_interval()) as heart:

        def on_iteration(progress: Any) -> None:
            nonlocal done, last, history
            done += 1
            TRAINING_ITERATIONS.inc()
            last = iteration_progress(progress, done)
            saved = getattr(progress, "checkpoint", None)
            checkpoint = uploads.try_publish(saved) if saved else heart.details.checkpoint
            if saved:
                last = last.model_copy(update={"checkpoint": checkpoint})
            history = keep_history([*history, last])
            heart.beat(heartbeat(checkpoint))

        def should_stop() -> bool:
            return activity.is_cancelled() or activity.is_worker_shutdown()

        with activity.shield_thread_cancel_exception():
            with policy_errors():
                ensure_ray(settings)
                result = train_round(
                    round_config, resume_from=resume_local, on_iteration=on_iteration, should_stop=should_stop
                )
            if resume_local is not None and result.checkpoint == str(Path(resume_local).resolve()):
                checkpoint = resume_from  # nothing new was trained
            else:
                checkpoint = uploads.published.get(result.checkpoint, result.checkpoint)
            heart.beat(heartbeat(checkpoint))
    if done < target:
        TRAINING_ROUNDS.labels("interrupted").inc()
        # Only a cancel (raised by the shield above) or a worker shutdown stops a round early.
        raise ApplicationError(
            f"worker shut down during round {input.round} at iteration {done}/{target}; "
            f"the retry resumes from {checkpoint}",
            type=WORKER_SHUTDOWN,
        )
    checkpoint = uploads.final(checkpoint)
    if Path(result.checkpoint).parent == local_dir.resolve():
        _prune_siblings(Path(result.checkpoint))
    uploads.prune(checkpoint, local_dir)
    TRAINING_ROUNDS.labels("completed").inc()
    return _output(checkpoint, last, history, elapsed_s=time.monotonic() - started, result=result)


class _Uploads:
    """Publishing a round's checkpoints to a remote artifact store (nothing to do for a
    local one): every saved checkpoint before it is heartbeated, the last one for sure."""

    def __init__(self, settings: Any, final: str) -> None:
        from worker import artifacts

        self._artifacts = artifacts
        self._settings = settings
        self.remote_dir = final if is_store_uri(final) else None
        self.published: dict[str, str] = {}
        """local checkpoint path -> its URI in the store"""

    def _publish(self, local: str) -> str:
        if self.remote_dir is None or is_store_uri(local):
            return local
        if local not in self.published:
            started = time.monotonic()
            uri = f"{self.remote_dir}/{Path(local).name}"
            self.published[local] = self._artifacts.publish(self._settings, Path(local), uri)
            activity.logger.info("uploaded %s in %.2f s", uri, time.monotonic() - started)
        return self.published[local]

    def try_publish(self, local: str) -> str:
        """The checkpoint's URI, or its local path if the upload failed (mid-round a
        store outage must not cost the round; the final upload retries)."""
        try:
            return self._publish(local)
        except Exception as error:  # pyarrow raises OSError and ArrowException subclasses
            activity.logger.warning("could not upload checkpoint %s (training goes on): %s", local, error)
            return local

    def final(self, checkpoint: str) -> str:
        """The round's checkpoint in the store; a retryable error if it can't get there."""
        try:
            return self._publish(checkpoint)
        except Exception as error:
            raise ApplicationError(
                f"could not upload checkpoint {checkpoint} to the artifact store {self.remote_dir}: {error}; "
                "the retry uploads it again without retraining",
                type=ARTIFACT_STORE_ERROR,
            ) from error

    def prune(self, final: str, local_dir: Path) -> None:
        """Drop the round's intermediate checkpoints from the store and the local staging
        copy (the cache holds the final one), best effort."""
        if self.remote_dir is None or not is_store_uri(final):
            return
        try:
            self._artifacts.delete_siblings(self._settings, final)
        except Exception as error:
            activity.logger.warning("could not remove intermediate checkpoints beside %s: %s", final, error)
        shutil.rmtree(local_dir, ignore_errors=True)


def store_unavailable(location: str, error: Exception) -> ApplicationError:
    """Retryable: the store may be back by the next attempt, and nothing was trained yet."""
    return ApplicationError(
        f"cannot read checkpoint {location} from the artifact store: {error}", type=ARTIFACT_STORE_ERROR
    )


def round_seed(seed: int, round_: int) -> int:
    """A different training episode stream per round, fixed by the run's seed."""
    return (seed * 1_000_003 + round_ * 7_919) % (2**31 - 1)


def _output(
    checkpoint: str,
    last: IterationProgress | None,
    history: list[IterationProgress],
    elapsed_s: float,
    result: Any = None,
) -> TrainRoundOutput:
    iteration = getattr(result, "iteration", None) or (last.iteration if last else 0)
    env_steps = getattr(result, "env_steps", None) or (last.env_steps if last else 0)
    return TrainRoundOutput(
        checkpoint=str(checkpoint),
        iteration=iteration,
        env_steps=env_steps,
        elapsed_s=elapsed_s,
        last=last,
        history=history,
    )


def _prune_siblings(final: Path) -> None:
    """Drop this round's intermediate checkpoints once its last one is safe."""
    for sibling in final.parent.glob("iter-*"):
        if sibling != final and sibling.is_dir():
            shutil.rmtree(sibling, ignore_errors=True)


@activity.defn(name="store_checkpoint")
def store_checkpoint(input: StoreCheckpointInput) -> StoredCheckpoint:
    """Record a round's checkpoint: write its summary next to it and, when the artifact
    store is not local, upload it there. Runs on the training queue, where the
    checkpoint was written."""
    from worker import artifacts
    from worker.settings import get_settings

    settings = get_settings()
    local = Path(input.checkpoint)
    if is_store_uri(input.checkpoint):  # train_policy uploaded it already
        if input.summary is not None:
            summary_uri = f"{input.checkpoint.rstrip('/')}/{artifacts.SUMMARY_FILE}"
            artifacts.write_text(settings, summary_uri, input.summary.model_dump_json(indent=2))
        return StoredCheckpoint(checkpoint=input.checkpoint, uploaded=True)
    if not local.exists():
        raise checkpoint_error(FileNotFoundError(f"checkpoint {input.checkpoint} is not on this worker"))
    if input.summary is not None:
        (local / artifacts.SUMMARY_FILE).write_text(input.summary.model_dump_json(indent=2))
    local_dir, final = artifacts.resolve_output(settings, input.output_dir)
    if not is_store_uri(final):
        return StoredCheckpoint(checkpoint=str(local), uploaded=False)
    try:
        relative = local.relative_to(local_dir).as_posix()
    except ValueError:
        relative = local.name
    location = artifacts.publish(settings, local, f"{final}/{relative}")
    activity.logger.info("uploaded round %d checkpoint of %s to %s", input.round, input.run_id, location)
    return StoredCheckpoint(checkpoint=location, uploaded=True)
