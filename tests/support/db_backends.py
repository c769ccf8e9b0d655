"""The app's two database backends, for tests that run once on each: SQLite (the
embedded default) and PostgreSQL (the session's real server, `postgres_server` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")


def backend_url(request: pytest.FixtureRequest, backend: str, sqlite_dir: Path) -> str:
    """A fresh, empty database of `backend`: a SQLite file in `sqlite_dir`, or a new
    database on the session's PostgreSQL server (skips when PostgreSQL is missing)."""
    if backend == "sqlite":
        return f"sqlite:///{(sqlite_dir / 'rlsched.db').resolve()}"
    server = request.getfixturevalue("postgres_server")
    return server.create_database()
