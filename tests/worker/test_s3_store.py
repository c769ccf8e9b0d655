"""Checkpoints on S3, against a real S3-compatible server (moto's server mode on a free
loopback port, tests/support/moto_s3.py): a training round ends up in the bucket, plans restore
it from there on a worker that never saw it, a replaced object at the same URI is
reloaded, a heartbeat resume restores from the store, and a store that can't be used
is named at worker start."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.moto_s3 import S3Server, free_port
from support.workers import fresh_prefix, queues, running_workers, tiny_run
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment

from worker import artifacts
from worker.contracts import (
    ArtifactStoreOptions,
    JobSpec,
    NodeSpec,
    PlanInput,
    PolicyRef,
    TrainingHeartbeat,
    TrainRoundInput,
)
from worker.settings import get_settings
from worker.storage import artifact_store_problem

ROOT = Path(__file__).resolve().parents[2]
MODULE_FILES = "learner_group/learner/rl_module/default_policy/"


@pytest.fixture
def s3_store(s3_server: S3Server, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh bucket as this test's RLSCHED_ARTIFACT_STORE, with the worker settings
    re-read; the store is listed on every use (no revalidation window)."""
    store = f"s3://{s3_server.new_bucket()}/runs"
    for name, value in s3_server.env(store, RLSCHED_ARTIFACT_REVALIDATE_S="0").items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield store
    get_settings.cache_clear()


def forget_local_copies(data_dir: Path) -> None:
    """What another machine would have: nothing downloaded, nothing staged."""
    artifacts._known.clear()
    for name in ("checkpoint-cache", "checkpoints", "staging"):
        shutil.rmtree(data_dir / name, ignore_errors=True)


def iteration_dirs(keys: list[str], run_prefix: str) -> set[str]:
    """The `iter-*` directories holding objects under `<run_prefix>round-*/`."""
    parts = [k.removeprefix(run_prefix).split("/") for k in keys if k.startswith(run_prefix)]
    return {p[1] for p in parts if len(p) > 2 and p[1]}


def bucket_and_prefix(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


def test_store_problems_name_the_cause(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3_server.new_bucket()
    for name, value in s3_server.env(f"s3://{bucket}/x").items():
        monkeypatch.setenv(name, value)
    options = ArtifactStoreOptions(uri=f"s3://{bucket}/x", s3_endpoint_url=s3_server.endpoint, retries=1)
    assert artifact_store_problem(options, write=True) is None
    assert s3_server.keys(bucket) in ([], ["x/"])  # the probe is gone (pyarrow may keep a dir marker)

    missing = artifact_store_problem(options.model_copy(update={"uri": "s3://no-such-bucket/x"}))
    assert missing is not None and "bucket 'no-such-bucket' does not exist" in missing

    nowhere = f"http://127.0.0.1:{free_port()}"
    unreachable = artifact_store_problem(options.model_copy(update={"s3_endpoint_url": nowhere}))
    assert unreachable is not None and "endpoint unreachable" in unreachable and nowhere in unreachable

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    rejected = artifact_store_problem(options)
    assert rejected is not None and "credentials rejected" in rejected


@pytest.mark.parametrize("case", ["wrong-credentials", "missing-bucket"])
def test_worker_refuses_to_start_against_a_store_it_cannot_use(s3_server: S3Server, case: str) -> None:
    bucket = s3_server.new_bucket()
    overrides = {"AWS_SECRET_ACCESS_KEY": "wrong"} if case == "wrong-credentials" else {}
    store = f"s3://{bucket}/runs" if case == "wrong-credentials" else "s3://no-such-bucket/runs"
    env = {
        **os.environ,
        **s3_server.env(store, **overrides),
        "RLSCHED_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # never reached: the store is checked first
        "RLSCHED_WORKER_QUEUE": "training",
    }
    done = subprocess.run(
        [sys.executable, "-m", "worker.main"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    expected = "credentials rejected" if case == "wrong-credentials" else "does not exist"
    assert expected in done.stderr and "not starting" in done.stderr, done.stderr[-2000:]


@pytest.mark.integration
@pytest.mark.rl
@pytest.mark.timeout(600)
def test_training_round_lands_in_s3_and_plans_restore_it(
    temporal_address: str, s3_server: S3Server, s3_store: str, data_dir: Path
) -> None:
    """Two rounds through TrainingLoopWorkflow: each round's final checkpoint and its
    summary are objects in the bucket (intermediates pruned), then a plan on a worker
    with an empty cache downloads and uses it, and an object replaced at the same URI is
    loaded anew."""
    import asyncio

    from worker.activities.inference import plan_schedule
    from worker.rl.inference import load_module
    from worker.workflows.scheduler import SchedulerWorkflow
    from worker.workflows.training_loop import TrainingLoopWorkflow

    prefix = fresh_prefix()
    run_id = f"s3-{uuid.uuid4().hex[:6]}"

    async def body() -> tuple[Any, Any]:
        async with running_workers(temporal_address, prefix) as client:
            progress = await client.execute_workflow(
                TrainingLoopWorkflow.run,
                tiny_run(run_id, max_rounds=2, iterations_per_round=2),
                id=f"training-run-{run_id}",
                task_queue=queues(prefix)[0],
                execution_timeout=timedelta(minutes=8),
            )
            forget_local_copies(data_dir)
            plan = await client.execute_workflow(
                SchedulerWorkflow.run,
                plan_input(progress.rounds[-1].checkpoint),
                id=f"plan-{run_id}",
                task_queue=queues(prefix)[1],
            )
            return progress, plan

    progress, plan = asyncio.run(body())
    bucket, store_prefix = bucket_and_prefix(s3_store)
    first, second = (r.checkpoint for r in progress.rounds)
    assert first == f"{s3_store}/{run_id}/round-0001/iter-000002"
    assert second == f"{s3_store}/{run_id}/round-0002/iter-000004"
    keys = s3_server.keys(bucket)
    for checkpoint in (first, second):
        key = bucket_and_prefix(checkpoint)[1]
        assert f"{key}/rlsched-round.json" in keys and f"{key}/rllib_checkpoint.json" in keys
        assert any(k.startswith(f"{key}/{MODULE_FILES}") for k in keys)
    assert iteration_dirs(keys, f"{store_prefix}/{run_id}/") == {"iter-000002", "iter-000004"}  # pruned
    assert plan.checkpoint == second and len(plan.placements) + len(plan.unplaced) == 3
    assert list((data_dir / "checkpoint-cache").iterdir()), "the plan's worker downloaded the checkpoint"

    # Replace the objects at `first` by `second`'s: the same URI now holds other weights.
    client = s3_server.client()
    first_key, second_key = bucket_and_prefix(first)[1], bucket_and_prefix(second)[1]
    before = load_module(artifacts.ensure_local(get_settings(), first))
    for key in keys:
        if key.startswith(f"{second_key}/"):
            target = f"{first_key}/{key.removeprefix(second_key + '/')}"
            client.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key})
    after = load_module(artifacts.ensure_local(get_settings(), first))
    assert after is not before
    assert same_weights(after, load_module(artifacts.ensure_local(get_settings(), second)))
    assert not same_weights(after, before)
    out = plan_schedule(plan_input(first))
    assert out.placements == plan.placements  # planned with the replaced (second round's) weights


def same_weights(a: Any, b: Any) -> bool:
    import torch

    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def plan_input(checkpoint: str) -> PlanInput:
    return PlanInput(
        nodes=[NodeSpec(id="a", cpus=16, gpus={"p5": 4}), NodeSpec(id="b", cpus=16, gpus={"p4": 4})],
        jobs=[JobSpec(id=f"j{i}", cpus=2, gpus=1 + i, runtime_estimate_s=120) for i in range(3)],
        policy=PolicyRef(kind="checkpoint", name="s3", checkpoint=checkpoint),
        window=8,
        baseline=None,
    )


def activity_environment(details: list[Any] | None = None) -> tuple[ActivityEnvironment, list[Any]]:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        activity_type="train_policy",
        heartbeat_details=details or [],
        heartbeat_timeout=timedelta(seconds=30),
    )
    beats: list[TrainingHeartbeat] = []

    def on_heartbeat(*details: Any) -> None:
        if details and details[0] is not None:
            beats.append(TrainingHeartbeat.model_validate(details[0]))

    env.on_heartbeat = on_heartbeat
    return env, beats


@pytest.mark.rl
@pytest.mark.timeout(600)
def test_heartbeat_resume_restores_from_the_store(
    s3_server: S3Server, s3_store: str, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A round interrupted after two iterations heartbeated an S3 URI (uploaded before
    the heartbeat); its retry on a machine with none of the local files restores it from
    the store and trains only the missing iterations."""
    from worker.activities.training import train_policy

    run_id = f"resume-{uuid.uuid4().hex[:6]}"
    round_input = TrainRoundInput(
        run_id=run_id,
        round=1,
        config=tiny_run(run_id, iterations_per_round=4),
        output_dir=f"{run_id}/round-0001",
    )
    env, beats = activity_environment()

    def cancel_after_two(*details: Any) -> None:
        seen = len(beats)
        record(*details)
        if len(beats) > seen and beats[-1].iterations_done == 2:
            env.cancel()

    record = env.on_heartbeat
    env.on_heartbeat = cancel_after_two
    with pytest.raises(CancelledError):
        env.run(train_policy, round_input)
    last = beats[-1]
    assert last.iterations_done in (2, 3) and last.progress is not None
    assert last.checkpoint is not None and last.checkpoint.startswith(f"{s3_store}/{run_id}/round-0001/iter-")
    assert last.progress.checkpoint == last.checkpoint
    bucket, key = bucket_and_prefix(last.checkpoint)
    assert f"{key}/rllib_checkpoint.json" in s3_server.keys(bucket)

    forget_local_copies(data_dir)
    retry, retry_beats = activity_environment([last.model_dump(mode="json")])
    with caplog.at_level(logging.INFO):
        out = retry.run(train_policy, round_input)
    assert f"round 1 resumes at iteration {last.iterations_done}/4 from {last.checkpoint}" in caplog.text
    assert "downloaded checkpoint" in caplog.text
    assert out.iteration == last.progress.iteration + 4 - last.iterations_done  # counted on, not restarted
    assert out.checkpoint == f"{s3_store}/{run_id}/round-0001/iter-{out.iteration:06d}"
    assert retry_beats[0].iterations_done == last.iterations_done
    round_dir = key.rsplit("/", 2)[0] + "/"  # runs/<run>/
    assert iteration_dirs(s3_server.keys(bucket), round_dir) == {f"iter-{out.iteration:06d}"}  # both pruned


@pytest.mark.integration
@pytest.mark.rl
@pytest.mark.timeout(600)
def test_killed_worker_resumes_on_another_machine_from_the_store(
    temporal_address: str, s3_server: S3Server, s3_store: str
) -> None:
    """test_crash_resume's SIGKILL case with the store on S3 and the second worker on a
    different data dir (another machine: none of the first one's files): the retry
    restores the heartbeated checkpoint from the bucket and trains only what is missing."""
    import asyncio
    import tempfile

    from support.workers import TINY_PPO, mid_round_heartbeat, training_heartbeat
    from test_crash_resume import ITERATIONS, kill_group, start_worker, stop_worker

    from worker.main import connect
    from worker.workflows.training_loop import TrainingLoopWorkflow

    prefix = fresh_prefix()
    machines = [Path(tempfile.mkdtemp(prefix="rls-", dir="/tmp")) for _ in range(2)]
    log = machines[0] / "workers.log"

    async def body() -> None:
        client = await connect(address=temporal_address)
        first = start_worker(temporal_address, prefix, machines[0], log)
        second = None
        try:
            config = tiny_run(
                f"s3crash-{uuid.uuid4().hex[:6]}",
                max_rounds=1,
                iterations_per_round=ITERATIONS,
                heartbeat_timeout_s=5,
                ppo=TINY_PPO.model_copy(update={"train_batch_size": 1024, "minibatch_size": 512}),
            )
            handle = await client.start_workflow(
                TrainingLoopWorkflow.run,
                config,
                id=f"training-run-{config.run_id}",
                task_queue=queues(prefix)[0],
            )
            beat = await mid_round_heartbeat(client, handle, first, log, timeout_s=240)
            assert beat.checkpoint and beat.iterations_done < ITERATIONS
            kill_group(first)
            first.wait()
            beat = await training_heartbeat(client, handle)
            assert beat is not None and beat.checkpoint and beat.checkpoint.startswith(f"{s3_store}/")

            second = start_worker(temporal_address, prefix, machines[1], log)
            final = await asyncio.wait_for(handle.result(), 300)
            assert final.rounds[0].iteration == ITERATIONS  # counted on, not restarted
            assert final.rounds[0].checkpoint.startswith(f"{s3_store}/{config.run_id}/round-0001/")
            text = log.read_text()
            assert f"resumes at iteration {beat.iterations_done}/{ITERATIONS} from {beat.checkpoint}" in text
            assert f"downloaded checkpoint {beat.checkpoint}" in text
        finally:
            for process in (first, second):
                if process is not None:
                    stop_worker(process)

    try:
        asyncio.run(body())
    finally:
        for machine in machines:
            shutil.rmtree(machine, ignore_errors=True)


@pytest.mark.rl
@pytest.mark.timeout(600)
def test_a_store_outage_mid_round_costs_no_training(
    s3_server: S3Server, s3_store: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint goes away after the worker started: the round trains to the end
    (heartbeating local checkpoints), then fails *retryably* at the final upload; the
    retry, with the store back, uploads the trained checkpoint without training again."""
    from temporalio.exceptions import ApplicationError

    from worker.activities import ARTIFACT_STORE_ERROR
    from worker.activities.training import train_policy

    run_id = f"outage-{uuid.uuid4().hex[:6]}"
    config = tiny_run(run_id, iterations_per_round=2)
    round_input = TrainRoundInput(run_id=run_id, round=1, config=config, output_dir=f"{run_id}/round-0001")
    monkeypatch.setenv("RLSCHED_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    env, beats = activity_environment()
    with pytest.raises(ApplicationError) as failed:
        env.run(train_policy, round_input)
    assert failed.value.type == ARTIFACT_STORE_ERROR and not failed.value.non_retryable
    last = beats[-1]
    assert last.iterations_done == 2 and last.checkpoint and Path(last.checkpoint).is_dir()  # local, kept

    monkeypatch.setenv("RLSCHED_S3_ENDPOINT_URL", s3_server.endpoint)
    get_settings.cache_clear()
    retry, retry_beats = activity_environment([last.model_dump(mode="json")])
    out = retry.run(train_policy, round_input)
    assert out.checkpoint == f"{s3_store}/{run_id}/round-0001/{Path(last.checkpoint).name}"
    assert out.elapsed_s == 0.0 and retry_beats == []  # nothing trained again
    bucket, key = bucket_and_prefix(out.checkpoint)
    assert f"{key}/rllib_checkpoint.json" in s3_server.keys(bucket)


def test_labels_resume_in_the_store_and_download_like_a_checkpoint(
    s3_store: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A labelling attempt on another machine left one episode's part in the bucket (and
    a torn write): the retry labels only the other episode, the bucket ends with one
    labels.parquet and no parts, and a fresh machine reads it through the checkpoint cache."""
    from worker.contracts.search import SearchOptions
    from worker.rl import label_store
    from worker.rl.labels import LabelRequest, label_episode, label_seeds, metadata_of, read_labels
    from worker.sim.workloads import WorkloadSpec

    request = LabelRequest(
        WorkloadSpec("deadline-tight", nodes=4, jobs=40),
        search="search:edf+fastest",
        options=SearchOptions(candidates=4, depth=1, budget_ms=60_000),
        window=8,
    )
    seeds = label_seeds(11, 2)
    settings = get_settings()
    location = f"{s3_store}/run/labels/round-0001"
    filesystem, path = artifacts.filesystem(settings, location)
    filesystem.create_dir(f"{path}/parts", recursive=True)
    label_store._write(filesystem, f"{path}/parts/{seeds[0]}.parquet", label_episode(request, seeds[0]))
    with filesystem.open_output_stream(f"{path}/parts/{seeds[1]}.parquet.partial") as out:
        out.write(b"torn")
    labelled: list[int] = []

    def in_process(request: LabelRequest, todo: list[int]) -> Iterator[Any]:  # no Ray needed here
        labelled.extend(todo)
        return (label_episode(request, seed) for seed in todo)

    monkeypatch.setattr(label_store, "labelled_episodes", in_process)
    table = label_store.label_resumably(request, seeds, filesystem, path)
    assert labelled == [seeds[1]]
    assert metadata_of(table)["seeds"] == seeds
    import pyarrow.fs as pafs

    names = [i.base_name for i in filesystem.get_file_info(pafs.FileSelector(path, recursive=True))]
    assert names == ["labels.parquet"], names
    forget_local_copies(data_dir)
    assert read_labels(artifacts.ensure_local(settings, location)).equals(table)
