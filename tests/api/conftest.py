"""The API tests' client: the app with its lifespan, Temporal unreachable on purpose
(support/api.py), on a fresh database, once on SQLite and once on PostgreSQL. Tests that
need a live Temporal server or other settings build their app from the same settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.api import offline_settings

from app.main import create_app


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(offline_settings(tmp_path, database_url=database_url))) as test_client:
        yield test_client
