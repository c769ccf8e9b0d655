"""The app as the API tests build it when Temporal must not answer: nothing listens on
the discard port, the reconciler is off, so every answer comes from the app alone."""

from __future__ import annotations

from pathlib import Path

import httpx

from app.core.config import Settings

PROBLEM = "application/problem+json"
UNREACHABLE_TEMPORAL = "127.0.0.1:9"


def offline_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "temporal_address": UNREACHABLE_TEMPORAL,
        "temporal_connect_timeout_s": 1.0,
        "temporal_rpc_timeout_s": 1.0,
        "reconcile_interval_s": 0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def assert_problem(response: httpx.Response, status: int) -> dict:
    """A problem+json answer with `status`, a title and a detail; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body
