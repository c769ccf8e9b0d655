"""Ray, once per process, and nothing of it under the user's home.

`ray.init()` without an address silently attaches to the last local cluster it finds,
so the embedded default asks for `address="local"` explicitly; with RAY_ADDRESS set we
attach and must not pass `num_cpus` (Ray raises). Ray's `session_*` folders go under
the data dir instead of /tmp/ray.

RLlib's Algorithm (a Tune Trainable) makes an empty log folder per build under
`ray.train.constants.DEFAULT_STORAGE_PATH` (`~/ray_results`), computed at import time
from the home directory and with no config or env var to move it in ray 2.60 (the
`storage` argument would also chdir the process into it). `Trainable._setup_logdir`
reads the module global `ray.tune.trainable.trainable.DEFAULT_STORAGE_PATH` at call
time, so we point that under the data dir; `train.py` also removes each algorithm's
(empty) folder when it stops.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ray

from worker.settings import WorkerSettings

_lock = threading.Lock()
_owner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ray-owner")
"""The one thread local Ray clusters are started from; it lives as long as the process.
Ray starts its GCS and raylet with PR_SET_PDEATHSIG(SIGKILL) ("fate sharing"), and Linux
sends that signal when the *thread* that forked them exits, not the process. Started
from a short-lived thread, the cluster can be killed under a live driver, which then
waits 60 s for its GCS and exits 1: seen intermittently in the SIGTERM probe test,
whose starter thread ends right after `ray.init` (raylet log: "terminated
unexpectedly", at that moment)."""


def results_dir(settings: WorkerSettings) -> Path:
    return (settings.data_dir / "ray_results").resolve()


def redirect_algorithm_logdir(settings: WorkerSettings) -> Path:
    """Point RLlib's per-Algorithm log folder under the data dir; returns it."""
    from ray.tune.trainable import trainable

    path = results_dir(settings)
    path.mkdir(parents=True, exist_ok=True)
    trainable.DEFAULT_STORAGE_PATH = str(path)
    return path


def ensure_ray(settings: WorkerSettings) -> None:
    """Start (or attach to) Ray once per process; safe to call from any thread."""
    _owner.submit(_ensure_ray, settings).result()


def _ensure_ray(settings: WorkerSettings) -> None:
    with _lock:
        redirect_algorithm_logdir(settings)
        if ray.is_initialized():
            return
        common = {
            "log_to_driver": False,
            "logging_level": logging.WARNING,
            "configure_logging": True,
            "ignore_reinit_error": True,
        }
        if settings.ray_address:
            ray.init(address=settings.ray_address, **common)
            return
        temp_dir = settings.ray_temp_dir
        temp_dir.mkdir(parents=True, exist_ok=True)
        ray.init(
            address="local",
            num_cpus=settings.ray_num_cpus,
            include_dashboard=False,
            _temp_dir=str(temp_dir),
            **common,
        )


def shutdown_ray() -> None:
    with _lock:
        if ray.is_initialized():
            ray.shutdown()
