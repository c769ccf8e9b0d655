"""What the integration tests share to run the stack for real: a short data dir, a
`python -m worker.main` process in its own session, waiting on a condition with the
worker's log in the failure message, free loopback ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def short_data_dir(prefix: str) -> Iterator[Path]:
    """Short on purpose: Ray's unix socket paths live under it (108-byte limit)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def worker_process(
    temporal_address: str, data_dir: Path, prefix: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A worker serving both queues under `prefix`, logging to data_dir/worker.log; its
    own session, so stopping it takes Ray's helper processes along."""
    environment = {
        **os.environ,
        "RLSCHED_DATA_DIR": str(data_dir),
        "RLSCHED_TEMPORAL_ADDRESS": temporal_address,
        "RLSCHED_TASK_QUEUE_PREFIX": prefix,
        **(env or {}),
    }
    with open(data_dir / "worker.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker.main"],
            env=environment,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, log: Path) -> Any:
    """check()'s first truthy value; on timeout an AssertionError with the log's tail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}; worker log tail:\n{tail}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
