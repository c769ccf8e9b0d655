"""`POST /schedule` with a `search:<base>` policy: bad names and options are a 422 naming
the field (the contracts refuse them, so the worker's input refuses the same), and a
search plan through the real stack (Temporal dev server, the inference worker) answers
200 with notes saying what the search did."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.inference_thread import inference_worker_thread

from app.core.config import Settings
from app.main import create_app
from worker.contracts import PlanInput, PolicyRef, SearchOptions

NODES = [
    {"id": "n1", "cpus": 32, "memory_gb": 256, "gpus": {"p5": 8}},
    {"id": "n2", "cpus": 16, "gpus": {"p4": 4}},
]
JOBS = [
    {
        "id": f"j{i}",
        "cpus": 4,
        "gpus": 1 + i % 4,
        "runtime_estimate_s": 600 + 300 * i,
        "deadline_s": 2400 + 200 * i,
    }
    for i in range(10)
]
PLAN = {"nodes": NODES, "jobs": JOBS}


def assert_422_naming(response, field: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    problem = response.json()
    locations = [error["loc"] for error in problem["errors"]]
    assert any(field in loc for loc in locations) or field in problem["detail"], problem


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"policy": "search:nonsense"}, "policy"),
        ({"policy": "search:no+such"}, "policy"),
        ({"policy": "search:../etc"}, "policy"),
        ({"policy": "search:"}, "policy"),
        ({"policy": "search:tuned", "search": {"candidates": 0}}, "candidates"),
        ({"policy": "search:tuned", "search": {"candidates": 65}}, "candidates"),
        ({"policy": "search:tuned", "search": {"budget_ms": 0}}, "budget_ms"),
        ({"policy": "search:tuned", "search": {"budget_ms": 1e9}}, "budget_ms"),
        ({"policy": "search:tuned", "search": {"rollouts": 33}}, "rollouts"),
        ({"policy": "search:tuned", "search": {"horizon": 0}}, "horizon"),
        ({"policy": "search:tuned", "search": {"nodes_per_job": 0}}, "nodes_per_job"),
        ({"policy": "search:tuned", "search": {"nodes_per_job": 17}}, "nodes_per_job"),
        ({"policy": "search:tuned", "search": {"arrivals": 0}}, "arrivals"),
        ({"policy": "search:tuned", "search": {"portfolio": ["sjf+fastest", "bogus"]}}, "portfolio"),
        ({"policy": "search:tuned", "search": {"portfolio": ["fifo"] * 9}}, "portfolio"),
        ({"policy": "search:tuned", "search": {"candidate": 4}}, "candidate"),
        ({"policy": "search:tuned", "search": {"candidates": "many"}}, "candidates"),
        ({"policy": "search:tuned", "search": {"futures": "sampled"}}, "search"),
        ({"policy": "edf", "search": {"candidates": 4}}, "search"),
        ({"search": {"candidates": 4}}, "search"),
    ],
)
def test_bad_search_requests_are_422_naming_the_field(client: TestClient, extra: dict, field: str) -> None:
    assert_422_naming(client.post("/schedule", json={**PLAN, **extra}), field)


def test_the_worker_input_refuses_what_the_api_refuses() -> None:
    with pytest.raises(ValueError, match="search base"):
        PolicyRef(kind="search", name="search:no+such")
    from worker.contracts import plan_input_problem

    edf = PolicyRef(kind="heuristic", name="edf")
    given = PlanInput(nodes=[], jobs=[], policy=edf, search=SearchOptions())
    assert "search" in (plan_input_problem(given) or "")
    no_location = PlanInput(nodes=[], jobs=[], policy=PolicyRef(kind="search", name="search:ckpt-1"))
    assert "names no checkpoint" in (plan_input_problem(no_location) or "")


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"srch-{uuid.uuid4().hex[:6]}-"


@pytest.fixture(scope="module")
def service_worker(temporal_address: str, prefix: str) -> Iterator[None]:
    with inference_worker_thread(temporal_address, prefix, ready_timeout_s=30):
        yield


def test_a_search_plan_answers_200_with_notes(
    temporal_address: str, prefix: str, service_worker: None, tmp_path: Path, database_url: str
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        temporal_address=temporal_address,
        task_queue_prefix=prefix,
        schedule_mode="service",
        schedule_timeout_s=30,
        reconcile_interval_s=0,
    )
    with TestClient(create_app(settings)) as client:
        answer = client.post(
            "/schedule", json={**PLAN, "policy": "search:tuned", "search": {"candidates": 4, "budget_ms": 50}}
        )
        assert answer.status_code == 200, answer.text
        plan = answer.json()
        assert plan["policy"] == "search:tuned"
        assert {p["job_id"] for p in plan["placements"]} == {j["id"] for j in JOBS}
        assert any("search over" in n and "4 candidates" in n and "changed" in n for n in plan["notes"]), plan
