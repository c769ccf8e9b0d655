"""Routes against a real Temporal dev server (the session fixture) with no worker polling
this app's task queues: what a user sees when the worker is down. Starts still succeed
(Temporal queues the work), waits are bounded and answered 504/503 with the ids to come
back with, and readiness says which queue lacks a worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.db_backends import BACKENDS, backend_url

from app.core.config import Settings
from app.main import create_app

CLUSTER = {
    "nodes": [{"id": "a", "cpus": 8, "gpus": {"p5": 8}}],
    "jobs": [{"id": "j", "gpus": 1, "runtime_estimate_s": 60}],
    "policy": "fifo",
}


@pytest.fixture(scope="module", params=BACKENDS)
def no_worker_client(
    request: pytest.FixtureRequest, temporal_address: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """Once on SQLite, once on PostgreSQL."""
    data_dir = Path(tmp_path_factory.mktemp("noworker"))
    settings = Settings(
        data_dir=data_dir,
        database_url=backend_url(request, request.param, data_dir),
        temporal_address=temporal_address,
        task_queue_prefix=f"noworker-{uuid.uuid4().hex[:6]}-",
        schedule_mode="workflow",  # a workflow per request: its 504 leaves the request running
        schedule_timeout_s=0.5,
        temporal_rpc_timeout_s=0.5,
        reconcile_interval_s=0,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_readiness_names_the_queues_without_a_worker(no_worker_client: TestClient) -> None:
    response = no_worker_client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["temporal"]["ok"] and checks["database"]["ok"]
    missing = [name for name, check in checks.items() if not check["ok"]]
    assert sorted(missing) == sorted(name for name in checks if name.startswith("worker:"))
    assert all("rlsched worker" in checks[name]["detail"] for name in missing)


def test_schedule_times_out_with_504_and_ids_to_fetch_later(no_worker_client: TestClient) -> None:
    response = no_worker_client.post("/schedule", json=CLUSTER)
    assert response.status_code == 504 and response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["workflow_id"] == f"schedule-{problem['id']}" and "GET /schedule/" in problem["detail"]
    pending = no_worker_client.get(f"/schedule/{problem['id']}").json()
    assert pending["status"] == "running" and pending["policy"] == "fifo"


def test_async_schedule_is_accepted_at_once(no_worker_client: TestClient) -> None:
    response = no_worker_client.post("/schedule", json={**CLUSTER, "async": True})
    assert response.status_code == 202
    assert response.json()["status"] == "running" and response.headers["location"].startswith("/schedule/")


def test_runs_start_and_read_stale_and_stop_is_503_without_a_worker(no_worker_client: TestClient) -> None:
    created = no_worker_client.post(
        "/training-runs", json={"max_rounds": 1}, headers={"Idempotency-Key": "nw-1"}
    )
    assert created.status_code == 201, created.text
    run = created.json()
    assert created.headers["location"] == f"/training-runs/{run['id']}"
    replay = no_worker_client.post(
        "/training-runs", json={"max_rounds": 1}, headers={"Idempotency-Key": "nw-1"}
    )
    assert replay.status_code == 201 and replay.json()["id"] == run["id"]
    other_body = no_worker_client.post(
        "/training-runs", json={"max_rounds": 2}, headers={"Idempotency-Key": "nw-1"}
    )
    assert other_body.status_code == 422 and "different request body" in other_body.json()["detail"]

    detail = no_worker_client.get(f"/training-runs/{run['id']}").json()
    assert detail["status"] == "running" and detail["stale"] is True  # the progress query had no worker

    stop = no_worker_client.post(f"/training-runs/{run['id']}/stop")
    assert stop.status_code == 503 and "rlsched worker" in stop.json()["detail"]
