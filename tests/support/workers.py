"""Helpers of the worker integration tests: in-process workers on a fresh pair of task
queues, and the tiny RL settings that keep every training test to seconds on 2 cores."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from worker.contracts import (
    INFERENCE_TASK_QUEUE,
    TRAINING_TASK_QUEUE,
    PPOParams,
    TrainingHeartbeat,
    TrainingRunConfig,
    WorkloadConfig,
)
from worker.main import build_workers, connect

TINY_WORKLOAD = WorkloadConfig(name="seed-demo", nodes=4, window=8, jobs=40)
TINY_PPO = PPOParams(train_batch_size=256, minibatch_size=128, num_epochs=1, num_envs_per_env_runner=4)


def fresh_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}-"


def queues(prefix: str) -> tuple[str, str]:
    return prefix + TRAINING_TASK_QUEUE, prefix + INFERENCE_TASK_QUEUE


def tiny_run(run_id: str, **overrides: object) -> TrainingRunConfig:
    values: dict[str, object] = {
        "run_id": run_id,
        "workload": TINY_WORKLOAD,
        "ppo": TINY_PPO,
        "iterations_per_round": 2,
        "max_rounds": 2,
        "eval_episodes": 1,
        "heartbeat_timeout_s": 10,
    }
    values.update(overrides)
    return TrainingRunConfig(**values)


@contextlib.asynccontextmanager
async def running_workers(address: str, prefix: str, which: str = "all") -> AsyncIterator[Client]:
    """A client and started workers on `<prefix>rl-training` / `<prefix>rl-inference`."""
    client = await connect(address=address)
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(client, which, prefix):  # type: ignore[arg-type]
            await stack.enter_async_context(worker)
        yield client


async def training_heartbeat(client: Client, handle: WorkflowHandle) -> TrainingHeartbeat | None:
    """The running train_policy attempt's last heartbeat, read from describe(): how the
    app shows live iteration progress."""
    description = await handle.describe()
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name == "train_policy" and pending.heartbeat_details.payloads:
            details = await client.data_converter.decode(pending.heartbeat_details.payloads)
            return TrainingHeartbeat.model_validate(details[0])
    return None


async def mid_round_heartbeat(
    client: Client, handle: WorkflowHandle, worker: subprocess.Popen, log: Path, timeout_s: float
) -> TrainingHeartbeat:
    """The round's first heartbeat with two iterations and a checkpoint: the moment a
    kill both loses work and leaves a checkpoint to resume from. Fails if the worker
    process died or the run stopped running first."""
    deadline = time.monotonic() + timeout_s
    beat = None
    while time.monotonic() < deadline:
        beat = await training_heartbeat(client, handle)
        if beat is not None and beat.iterations_done >= 2 and beat.checkpoint:
            return beat
        assert worker.poll() is None, log.read_text()[-3000:]
        status = (await handle.describe()).status
        assert status == WorkflowExecutionStatus.RUNNING, f"round ended before the kill: {status}"
        await asyncio.sleep(0.2)
    tail = log.read_text()[-3000:]
    raise AssertionError(f"no mid-round checkpoint in {timeout_s:.0f} s: {beat}\n{tail}")
