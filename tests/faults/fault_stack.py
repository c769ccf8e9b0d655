"""The stack the fault tests break: its own Temporal dev server persisted to a SQLite file
(so it can be restarted with its state), worker processes and the API as a real uvicorn
process, each restartable or killable on its own. Nothing is mocked; the only injected
fault is the full disk (see faulty_worker.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from stack_support import wait_for

from worker.devserver import DevServer, free_port, start_dev_server

ROOT = Path(__file__).resolve().parents[2]
UVICORN = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--no-access-log"]
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


def kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Each child runs in its own session, so this takes Ray's helpers along."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


@dataclass
class Stack:
    root: Path
    prefix: str = field(default_factory=lambda: f"flt-{uuid.uuid4().hex[:6]}-")
    temporal_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    server: DevServer | None = None
    api: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

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

    @property
    def logs(self) -> list[Path]:
        return sorted(self.root.glob("*.log"))

    def env(self, data_dir: Path) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "RLSCHED_DATA_DIR": str(data_dir),
            "RLSCHED_TEMPORAL_ADDRESS": self.temporal_address,
            "RLSCHED_TASK_QUEUE_PREFIX": self.prefix,
            "RLSCHED_ARTIFACT_STORE": str(self.checkpoints),
            "RLSCHED_RECONCILE_INTERVAL_S": "0.5",
            "RLSCHED_TEMPORAL_RPC_TIMEOUT_S": "10",
            "RLSCHED_SCHEDULE_TIMEOUT_S": "60",
            "RLSCHED_FAULTS_DISK_FULL_FLAG": str(self.disk_full_flag),
        }

    def start_temporal(self) -> None:
        self.server = start_dev_server(
            port=self.temporal_port, db_file=self.root / "temporal.db", log_file=self.root / "temporal.log"
        )

    def stop_temporal(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def start_worker(self) -> subprocess.Popen:
        """A worker on both queues with its own data dir (its own Ray) and the shared
        checkpoint store, so any worker can resume another's round."""
        n = len(self.workers)
        data_dir = self.root / f"w{n}"
        with open(self.root / f"worker{n}.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, str(FAULTY_WORKER)],
                env={**self.env(data_dir), "RLSCHED_WORKER_QUEUE": "all"},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.workers.append(process)
        return process

    def start_api(self) -> None:
        with open(self.root / "api.log", "ab") as log:
            self.api = subprocess.Popen(
                [*UVICORN, "--port", str(self.api_port)],
                env=self.env(self.app_dir),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for("the API's /readyz", self._ready, 120, self.logs)

    def _ready(self) -> bool:
        assert self.api is not None and self.api.poll() is None, "the API process exited"
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill_api(self) -> None:
        """SIGKILL: no lifespan shutdown, like a crashed or OOM-killed process."""
        if self.api is not None:
            kill_group(self.api)
            self.api.wait()
            self.api = None

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=90)

    def stop(self) -> None:
        self.kill_api()
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            kill_group(process)
            process.wait()
        self.stop_temporal()


def make_stack() -> Stack:
    """Short root on purpose: Ray's unix socket paths live under it (108-byte limit)."""
    return Stack(root=Path(tempfile.mkdtemp(prefix="rlf-", dir="/tmp")))


def remove_stack(stack: Stack) -> None:
    stack.stop()
    shutil.rmtree(stack.root, ignore_errors=True)


def wait_run(
    http: httpx.Client, run_id: str, statuses: tuple[str, ...], timeout_s: float, stack: Stack
) -> dict:
    def check() -> dict | None:
        response = http.get(f"/training-runs/{run_id}")
        body = response.json() if response.status_code == 200 else {}
        return body if body.get("status") in statuses else None

    return wait_for(f"run {run_id} to be {'/'.join(statuses)}", check, timeout_s, stack.logs)
