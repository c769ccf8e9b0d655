"""The training and evaluation activities alone, under temporalio's ActivityEnvironment:
a heartbeat per iteration, cancellation honoured between iterations with a checkpoint
saved, and a retried attempt resuming from the heartbeat instead of starting over."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.workers import tiny_run
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from worker.activities.evaluation import evaluate_policy
from worker.activities.scenario import generate_scenario
from worker.activities.training import store_checkpoint, train_policy
from worker.contracts import (
    EvaluateInput,
    StoreCheckpointInput,
    SyntheticSpec,
    TrainingHeartbeat,
    TrainRoundInput,
    WorkloadConfig,
)

pytestmark = pytest.mark.rl


def environment(
    heartbeat_details: list[Any] | None = None,
) -> tuple[ActivityEnvironment, list[TrainingHeartbeat]]:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        activity_type="train_policy",
        heartbeat_details=heartbeat_details or [],
        heartbeat_timeout=timedelta(seconds=10),
    )
    beats: list[TrainingHeartbeat] = []

    def on_heartbeat(*details: Any) -> None:
        if details:
            beat = details[0]
            beats.append(
                beat if isinstance(beat, TrainingHeartbeat) else TrainingHeartbeat.model_validate(beat)
            )

    env.on_heartbeat = on_heartbeat
    return env, beats


def distinct(beats: list[TrainingHeartbeat]) -> list[TrainingHeartbeat]:
    """Heartbeats without the liveness thread's repeats."""
    out: list[TrainingHeartbeat] = []
    for beat in beats:
        if not out or beat != out[-1]:
            out.append(beat)
    return out


def round_input(run_id: str, iterations: int) -> TrainRoundInput:
    return TrainRoundInput(
        run_id=run_id,
        round=1,
        config=tiny_run(run_id, iterations_per_round=iterations),
        output_dir=f"{run_id}/round-0001",
    )


def test_cancel_between_iterations_then_resume_from_the_heartbeat(data_dir: Path) -> None:
    env, beats = environment()

    def cancel_after_two(*details: Any) -> None:
        env_beats_before = len(beats)
        on_heartbeat(*details)
        if len(beats) > env_beats_before and beats[-1].iterations_done == 2:
            env.cancel()

    on_heartbeat = env.on_heartbeat
    env.on_heartbeat = cancel_after_two
    with pytest.raises(CancelledError):
        env.run(train_policy, round_input("cancel", iterations=5))
    seen = distinct(beats)
    assert [b.iterations_done for b in seen if b.progress][:2] == [1, 2]
    last = seen[-1]
    assert last.iterations_done in (2, 3)  # stopped at the next iteration boundary
    assert last.checkpoint and Path(last.checkpoint).is_dir()
    assert last.progress is not None and last.progress.iterations_in_round == last.iterations_done
    assert [p.iterations_in_round for p in last.history] == list(range(1, last.iterations_done + 1))

    # A retried attempt sees the heartbeat (as a dict, the way Temporal returns it).
    retry, retry_beats = environment([last.model_dump(mode="json")])
    out = retry.run(train_policy, round_input("cancel", iterations=5))
    assert out.last is not None and out.last.iterations_in_round == 5
    assert out.iteration == last.progress.iteration + 5 - last.iterations_done  # counted on
    assert distinct(retry_beats)[0].iterations_done == last.iterations_done
    # The round's history spans both attempts: every iteration once, in order.
    assert [p.iterations_in_round for p in out.history] == [1, 2, 3, 4, 5]
    numbers = [p.iteration for p in out.history]
    assert numbers == list(range(numbers[0], numbers[0] + 5)) and out.history[-1] == out.last
    final = Path(out.checkpoint)
    assert final.is_dir() and [p.name for p in final.parent.glob("iter-*")] == [final.name]

    stored, _ = environment()
    record = stored.run(
        store_checkpoint,
        StoreCheckpointInput(
            run_id="cancel", round=1, checkpoint=out.checkpoint, output_dir="cancel/round-0001"
        ),
    )
    assert record.checkpoint == out.checkpoint and not record.uploaded

    evaluation, _ = environment()
    result = evaluation.run(
        evaluate_policy,
        EvaluateInput(
            checkpoint=out.checkpoint,
            workload=WorkloadConfig(name="seed-demo", nodes=4, window=8, jobs=40),
            episodes=1,
        ),
    )
    assert result.ppo.policy == "ppo" and {m.policy for m in result.heuristics} >= {"fifo", "edf"}
    assert result.gain == pytest.approx(result.ppo.score - result.best_heuristic_score)


def test_a_round_already_done_in_a_previous_attempt_is_not_trained_again(data_dir: Path) -> None:
    env, _ = environment()
    out = env.run(train_policy, round_input("done", iterations=1))
    beat = TrainingHeartbeat(round=1, checkpoint=out.checkpoint, iterations_done=1, progress=out.last)
    retry, beats = environment([beat.model_dump(mode="json")])
    again = retry.run(train_policy, round_input("done", iterations=1))
    assert again.checkpoint == out.checkpoint and again.iteration == out.iteration
    assert beats == []


def test_bad_inputs_are_not_retried(data_dir: Path) -> None:
    env, _ = environment()
    with pytest.raises(ApplicationError) as missing:
        env.run(
            train_policy,
            round_input("missing", iterations=1).model_copy(
                update={"resume_from": "/nonexistent/checkpoint"}
            ),
        )
    assert missing.value.non_retryable and missing.value.type == "CheckpointError"
    assert "/nonexistent/checkpoint" in missing.value.message

    with pytest.raises(ApplicationError) as bad_trace:
        env.run(generate_scenario, SyntheticSpec(workload=WorkloadConfig(name="trace:swf:nonexistent.swf")))
    assert bad_trace.value.non_retryable and bad_trace.value.type == "InvalidInput"
