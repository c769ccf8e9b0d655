"""Property-based tests of the whole API from its own OpenAPI schema (schemathesis): for
every operation, generated requests (valid and not) never get a 500 and every response
matches the documented status codes, content types and schemas.

The app runs with its lifespan against the session's real Temporal dev server but with
a task-queue prefix no worker polls, and short timeouts: starting runs and plans really
happens on Temporal (so those code paths are exercised) while waiting is bounded, and no
training is ever done. Examples per operation are few so this stays within seconds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from app.core.config import Settings
from app.main import create_app

schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI emits OpenAPI 3.1


@pytest.fixture(scope="module")
def api_schema(temporal_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    app = create_app(
        Settings(
            data_dir=tmp_path_factory.mktemp("schemathesis"),
            temporal_address=temporal_address,
            task_queue_prefix=f"nobody-{uuid.uuid4().hex[:6]}-",
            schedule_timeout_s=0.3,
            temporal_rpc_timeout_s=0.3,
            reconcile_interval_s=0,
            api_key=API_KEY,
        )
    )
    with TestClient(app):  # runs the lifespan: migrations, Temporal client
        yield schemathesis.from_asgi("/openapi.json", app)


schema = schemathesis.from_pytest_fixture("api_schema")
API_KEY = "schemathesis-key"


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    # 502/503/504 are documented answers here (no worker polls, Temporal waits are cut
    # short); a 500 never is. Every other default check applies, auth included.
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {API_KEY}"}, excluded_checks=(not_a_server_error,)
    )
    assert response.status_code != 500, response.text


def test_schema_covers_every_route(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, reconcile_interval_s=0))
    paths = set(app.openapi()["paths"])
    assert paths == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/training-runs",
        "/training-runs/{run_id}",
        "/training-runs/{run_id}/stop",
        "/training-runs/{run_id}/metrics",
        "/training-schedules",
        "/training-schedules/{schedule_id}",
        "/training-schedules/{schedule_id}/pause",
        "/training-schedules/{schedule_id}/unpause",
        "/training-schedules/{schedule_id}/trigger",
        "/schedule",
        "/schedule/{request_id}",
        "/checkpoints",
        "/checkpoints/{checkpoint_id}",
        "/policy",
        "/policy/{policy_class}",
    }
