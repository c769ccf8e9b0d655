"""Fixtures of the worker tests: a per-session data dir (checkpoints, Ray's temp dir),
set through RLSCHED_DATA_DIR before the worker settings are first read. Ray starts once
per test process, in-process, on first use by a training activity."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    """Short on purpose: Ray's unix socket paths live under it (108-byte limit)."""
    from worker.settings import get_settings

    path = Path(tempfile.mkdtemp(prefix="rls-", dir="/tmp"))
    previous = os.environ.get("RLSCHED_DATA_DIR")
    os.environ["RLSCHED_DATA_DIR"] = str(path)
    get_settings.cache_clear()
    yield path
    if previous is None:
        os.environ.pop("RLSCHED_DATA_DIR", None)
    else:
        os.environ["RLSCHED_DATA_DIR"] = previous
    get_settings.cache_clear()
    if "ray" in sys.modules:  # Ray writes its session logs under the data dir until it stops
        from worker.rl.runtime import shutdown_ray

        shutdown_ray()
    shutil.rmtree(path, ignore_errors=True)
