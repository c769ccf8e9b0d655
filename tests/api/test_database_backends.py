"""What differs between the app's two databases, tested on both (SQLite and a real
PostgreSQL server): text PostgreSQL refuses (NUL characters) is a 422 on either, never a
500, and concurrent POST /training-runs with one Idempotency-Key from two app instances
(two processes' worth of engines and event loops on one database) make exactly one run
and one workflow, the losers replaying the winner's answer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core.config import Settings
from app.main import create_app
from app.models import Run

NUL = "\x00"
CLUSTER = {"nodes": [{"id": "a", "cpus": 4}], "jobs": [{"id": "j", "cpus": 1, "runtime_estimate_s": 5}]}


@pytest.fixture
def offline_client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        temporal_address="127.0.0.1:9",
        temporal_connect_timeout_s=1,
        reconcile_interval_s=0,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/training-runs/a%00b", None),
        ("get", "/checkpoints/a%00b", None),
        ("get", "/schedule/a%00b", None),
        ("get", "/checkpoints?run_id=a%00b", None),
        ("post", "/training-runs/a%00b/stop", {"reason": "x"}),
        ("post", "/training-runs/x/stop", {"reason": f"a{NUL}b"}),
        ("post", "/schedule", {**CLUSTER, "policy": f"x{NUL}y"}),
        ("post", "/training-runs", {"name": f"a{NUL}b"}),
        ("post", "/training-runs", {"resume_from_checkpoint": f"a{NUL}b"}),
        ("put", "/policy/default", {"policy": f"a{NUL}b"}),
    ],
)
def test_nul_characters_are_a_422_problem_on_every_backend(
    offline_client: TestClient, method: str, path: str, body: dict | None
) -> None:
    response = getattr(offline_client, method)(path, **({"json": body} if body is not None else {}))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "NUL" in response.json()["detail"]


def test_one_idempotency_key_from_two_app_instances_at_once_makes_one_run(
    temporal_address: str, tmp_path: Path, database_url: str
) -> None:
    """No worker polls the queue: starting the workflow is real, training never happens."""
    prefix = f"idem-{uuid.uuid4().hex[:6]}-"
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        temporal_address=temporal_address,
        task_queue_prefix=prefix,
        reconcile_interval_s=0,
    )
    body = {"name": "raced", "max_rounds": 1}
    key = {"Idempotency-Key": f"race-{uuid.uuid4().hex[:8]}"}
    with ExitStack() as stack:
        clients = [stack.enter_context(TestClient(create_app(settings))) for _ in range(2)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda i: clients[i % 2].post("/training-runs", json=body, headers=key), range(8))
            )
        assert {a.status_code for a in answers} <= {200, 201}, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        assert [a.headers.get("idempotent-replayed") for a in answers].count("true") == 7
        with Session(clients[0].app.state.engine) as session:  # type: ignore[attr-defined]
            rows = session.exec(select(Run).where(Run.idempotency_key == key["Idempotency-Key"])).all()
        assert len(rows) == 1 and rows[0].workflow_id == f"training-run-{rows[0].id}"
        other = clients[1].post("/training-runs", json={**body, "name": "other"}, headers=key)
        assert other.status_code == 422 and "different request body" in other.json()["detail"]
