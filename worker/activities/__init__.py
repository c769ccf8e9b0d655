"""Temporal activities: the only place workflows reach the simulator, Ray and torch.

Module-level imports stay light (contracts and temporalio): workflows import these
modules through the sandbox's pass-through, and the heavy libraries load on first call.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

INVALID_INPUT = "InvalidInput"
"""Error type of a request no retry can fix (unknown workload or policy, bad sizes)."""
CHECKPOINT_ERROR = "CheckpointError"
"""Error type of a missing, corrupt or incompatible checkpoint."""
ARTIFACT_STORE_ERROR = "ArtifactStoreError"
"""The artifact store could not take or give a checkpoint; retryable (an outage passes)."""
WORKER_SHUTDOWN = "WorkerShutdown"
"""A training attempt interrupted by its worker shutting down; the retry resumes it."""


def invalid_input(error: Exception) -> ApplicationError:
    return ApplicationError(str(error), type=INVALID_INPUT, non_retryable=True)


def checkpoint_error(error: Exception) -> ApplicationError:
    return ApplicationError(str(error), type=CHECKPOINT_ERROR, non_retryable=True)


@contextlib.contextmanager
def policy_errors() -> Iterator[None]:
    """Training and evaluation fail the same ways: a missing or unloadable checkpoint
    (CheckpointError), or input no retry can fix (any other ValueError)."""
    from worker.rl.inference import CheckpointError

    try:
        yield
    except (FileNotFoundError, CheckpointError) as error:
        raise checkpoint_error(error) from error
    except ValueError as error:
        raise invalid_input(error) from error


LIVENESS_INTERVAL_S = 2.0
"""Upper bound on the gap between heartbeats while a long call (an iteration, a build,
an evaluation) runs."""


def liveness_interval() -> float:
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        return LIVENESS_INTERVAL_S
    return min(LIVENESS_INTERVAL_S, max(0.2, timeout.total_seconds() / 4))


class Heartbeater:
    """Re-sends the latest heartbeat details from a side thread, so an activity's
    heartbeat timeout only has to cover a dead process, not its longest blocking call."""

    def __init__(self, first: Any = None, interval_s: float = LIVENESS_INTERVAL_S) -> None:
        self.details = first
        self._interval = interval_s
        self._context = contextvars.copy_context()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeater:
        self._send()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def beat(self, details: Any) -> None:
        self.details = details
        activity.heartbeat(details)

    def _send(self) -> None:
        if self.details is None:
            activity.heartbeat()
        else:
            activity.heartbeat(self.details)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._context.run(self._send)
            except Exception:  # the activity finished meanwhile; nothing left to keep alive
                return
