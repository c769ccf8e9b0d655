"""The stack the fault tests break, started by the launcher (worker/stack.py): its own
Temporal dev server persisted to a SQLite file (so it can be restarted with its state),
worker processes and the API as a real process, each restartable or killable on its
own. Nothing is mocked; the only injected fault is the full disk (see faulty_worker.py)."""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from support.stack import wait_for
from worker.stack import Child, Stack, WorkerQueue

FAULTY_WORKER = Path(__file__).with_name("faulty_worker.py")

TINY_PPO = {"train_batch_size": 256, "minibatch_size": 128, "num_epochs": 1, "num_envs_per_env_runner": 4}
TINY_WORKLOAD = {"name": "seed-demo", "nodes": 4, "window": 8, "jobs": 40}


def tiny_run(name: str, **overrides: Any) -> dict[str, Any]:
    """A POST /training-runs body that trains in seconds on 2 cores."""
    return {
        "name": name,
        "workload": TINY_WORKLOAD,
        "ppo": TINY_PPO,
        "iterations_per_round": 1,
        "max_rounds": 2,
        "eval_episodes": 1,
        "seed": 3,
        **overrides,
    }


CLUSTER = {
    "nodes": [{"id": "a", "cpus": 32, "gpus": {"p5": 8}}, {"id": "b", "cpus": 32, "gpus": {"p4": 8}}],
    "jobs": [
        {"id": f"j{i}", "cpus": 4, "gpus": 2, "priority": 1 + i % 3, "runtime_estimate_s": 600}
        for i in range(6)
    ],
}


@dataclass
class FaultStack(Stack):
    """The launcher's stack with what the fault tests break: each worker gets its own
    data dir (its own Ray) and the shared checkpoint store, so any worker can resume
    another's round; the API's database is a file the tests can delete."""

    prefix: str = field(default_factory=lambda: f"flt-{uuid.uuid4().hex[:6]}-")
    workers_started: int = 0
    """Numbers each worker's log and data dir, so a replacement never reuses a killed one's."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.env.update(
            {
                "RLSCHED_TASK_QUEUE_PREFIX": self.prefix,
                "RLSCHED_ARTIFACT_STORE": str(self.checkpoints),
                "RLSCHED_RECONCILE_INTERVAL_S": "0.5",
                "RLSCHED_TEMPORAL_RPC_TIMEOUT_S": "10",
                "RLSCHED_SCHEDULE_TIMEOUT_S": "60",
                "RLSCHED_FAULTS_DISK_FULL_FLAG": str(self.disk_full_flag),
            }
        )

    @property
    def root(self) -> Path:
        return self.data_dir

    @property
    def app_dir(self) -> Path:
        return self.root / "app"

    @property
    def db_file(self) -> Path:
        return self.app_dir / "rlsched.db"

    @property
    def checkpoints(self) -> Path:
        return self.root / "ckpt"

    @property
    def disk_full_flag(self) -> Path:
        """faulty_worker.py fails checkpoint saves whose path contains this file's text."""
        return self.root / "disk-full"

    def start_worker(
        self,
        queue: WorkerQueue = "all",
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> Child:
        """A worker whose disk fills on demand (faulty_worker.py), in its own data dir."""
        n = self.workers_started
        self.workers_started += 1
        return super().start_worker(
            queue,
            name=name or f"worker{n}",
            env={"RLSCHED_DATA_DIR": str(self.root / f"w{n}"), **(env or {})},
            command=command or [sys.executable, str(FAULTY_WORKER)],
        )

    def start_api(
        self,
        env: Mapping[str, str] | None = None,
        uvicorn_workers: int = 1,
        access_log: bool = False,
        ready_timeout_s: float | None = 120.0,
    ) -> Child:
        """Ready when it returns; its database in app_dir."""
        env = {"RLSCHED_DATA_DIR": str(self.app_dir), **(env or {})}
        return super().start_api(env, uvicorn_workers, access_log, ready_timeout_s)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=90)


def make_stack() -> FaultStack:
    """Short root on purpose: Ray's unix socket paths live under it (108-byte limit)."""
    return FaultStack(data_dir=Path(tempfile.mkdtemp(prefix="rlf-", dir="/tmp")))


def remove_stack(stack: FaultStack) -> None:
    stack.stop()
    shutil.rmtree(stack.root, ignore_errors=True)


def wait_run(
    http: httpx.Client, run_id: str, statuses: tuple[str, ...], timeout_s: float, stack: FaultStack
) -> dict:
    def check() -> dict | None:
        response = http.get(f"/training-runs/{run_id}")
        body = response.json() if response.status_code == 200 else {}
        return body if body.get("status") in statuses else None

    return wait_for(f"run {run_id} to be {'/'.join(statuses)}", check, timeout_s, stack.logs)
