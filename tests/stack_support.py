"""What the tests that run the stack for real share: a short data dir, a
`python -m worker.main` process in its own session, and waiting on a condition with the
processes' logs in the failure message."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


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
