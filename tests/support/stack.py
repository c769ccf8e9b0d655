"""What the tests that run the stack for real share: a short data dir, a worker process
started by the launcher, and waiting on a condition with the processes' logs in the
failure message."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from worker.stack import ROOT, Child, Stack

__all__ = ["ROOT", "short_data_dir", "wait_for", "worker_process"]


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
) -> Iterator[Child]:
    """A worker serving both queues under `prefix`, logging to data_dir/worker.log,
    started and stopped by the launcher (worker/stack.py)."""
    stack = Stack(data_dir=data_dir, env={"RLSCHED_TASK_QUEUE_PREFIX": prefix})
    stack.use_temporal(temporal_address)
    try:
        yield stack.start_worker("all", name="worker", env=env)
    finally:
        stack.stop(timeout_s=60)


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, logs: Path | list[Path] = ()) -> Any:
    """check()'s first truthy value; on timeout an AssertionError with the logs' tails."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    tails = "".join(
        f"\n--- {log.name}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        for log in ([logs] if isinstance(logs, Path) else logs)
        if log.exists()
    )
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}{tails}")
