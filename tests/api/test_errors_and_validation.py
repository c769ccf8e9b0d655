"""Routes with a fresh database (SQLite, then PostgreSQL) and Temporal deliberately
unreachable: validation, error shapes, limits and auth. Nothing here needs a Temporal server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from support.api import assert_problem, offline_settings

from app.main import create_app

NODE = {"id": "n1", "cpus": 32, "gpus": {"p5": 8}}
JOB = {"id": "j1", "cpus": 4, "gpus": 1, "runtime_estimate_s": 600}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"nodes": [{**NODE, "cpus": -1}], "jobs": [JOB]}, "nodes.0.cpus"),
        ({"nodes": [NODE], "jobs": [{**JOB, "gpus": -2}]}, "jobs.0.gpus"),
        ({"nodes": [{**NODE, "gpus": {"h100": 8}}], "jobs": [JOB]}, "unknown GPU type 'h100'"),
        ({"nodes": [NODE, NODE], "jobs": [JOB]}, "duplicate node id 'n1'"),
        ({"nodes": [NODE], "jobs": [JOB, JOB]}, "duplicate job id 'j1'"),
        ({"nodes": [NODE]}, "give either nodes and jobs, or synthetic"),
        ({"nodes": [NODE], "jobs": [JOB], "synthetic": {}}, "not both"),
        ({"nodes": [], "jobs": [JOB]}, "at least one node"),
        ({"nodes": [NODE], "jobs": [JOB], "baseline": "magic"}, "unknown baseline 'magic'"),
        ({"nodes": [NODE], "jobs": [{**JOB, "priority": 7}]}, "jobs.0.priority"),
        ({"nodes": [NODE], "jobs": [JOB], "colour": "red"}, "colour"),
        ({"synthetic": {"workload": {"name": "nope"}}}, "unknown workload 'nope'"),
        ({"nodes": [NODE], "jobs": [JOB] * 10_001}, "jobs"),
    ],
)
def test_invalid_schedule_bodies_are_422_problems_naming_the_field(
    client: TestClient, body: dict, where: str
) -> None:
    problem = assert_problem(client.post("/schedule", json=body), 422)
    assert where in problem["detail"] + str(problem.get("errors"))
    assert problem["errors"], "validation problems list every error with its location"


def test_unknown_policy_is_422_before_temporal_is_needed(client: TestClient) -> None:
    problem = assert_problem(
        client.post("/schedule", json={"nodes": [NODE], "jobs": [JOB], "policy": "nope"}), 422
    )
    assert "GET /checkpoints" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "policy"]


def test_malformed_json_is_a_422_problem(client: TestClient) -> None:
    response = client.post("/schedule", content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response, 422)


def test_oversized_body_is_413(tmp_path: Path) -> None:
    with TestClient(create_app(offline_settings(tmp_path, max_body_bytes=2048))) as small:
        body = {"nodes": [NODE], "jobs": [{**JOB, "id": f"job-{i}"} for i in range(100)]}
        problem = assert_problem(small.post("/schedule", json=body), 413)
        assert "2048 bytes" in problem["detail"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"ppo": {"lr": -1}}, "ppo.lr"),
        ({"ppo": {"train_batch_size": 256, "minibatch_size": 512}}, "minibatch_size"),
        ({"workload": {"nodes": 0}}, "workload.nodes"),
        ({"max_rounds": 0}, "max_rounds"),
        ({"iterations_per_round": "many"}, "iterations_per_round"),
        ({"learning_rate": 0.1}, "learning_rate"),
        ({"objective": "happiness"}, "objective"),
        ({"workload": {"name": "trace:swf:/dev/zero"}}, "under the traces directory"),
    ],
)
def test_invalid_training_runs_are_422(client: TestClient, body: dict, where: str) -> None:
    problem = assert_problem(client.post("/training-runs", json=body), 422)
    assert where in problem["detail"] + str(problem["errors"])


def test_unknown_resume_checkpoint_is_422(client: TestClient) -> None:
    problem = assert_problem(client.post("/training-runs", json={"resume_from_checkpoint": "nope"}), 422)
    assert problem["errors"][0]["loc"] == ["body", "resume_from_checkpoint"]


def test_temporal_down_is_503_with_the_address(client: TestClient) -> None:
    problem = assert_problem(client.post("/training-runs", json={}), 503)
    assert "127.0.0.1:9" in problem["detail"]
    assert_problem(client.post("/schedule", json={"nodes": [NODE], "jobs": [JOB], "policy": "edf"}), 503)
    assert client.get("/training-runs").json() == {"data": [], "count": 0}, "a failed start leaves no row"


def test_unknown_ids_and_routes_are_404_problems(client: TestClient) -> None:
    assert "GET /training-runs" in assert_problem(client.get("/training-runs/nope"), 404)["detail"]
    assert_problem(client.post("/training-runs/nope/stop"), 404)
    assert_problem(client.get("/checkpoints/nope"), 404)
    assert_problem(client.get("/schedule/nope"), 404)
    assert_problem(client.get("/no/such/route"), 404)
    assert_problem(client.delete("/checkpoints"), 405)


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "offset=-1", "status=sleeping", "order=random"])
def test_bad_query_parameters_are_422(client: TestClient, query: str) -> None:
    path = "/checkpoints" if "order" in query else "/training-runs"
    assert_problem(client.get(f"{path}?{query}"), 422)


def test_api_key_guards_everything_but_probes(tmp_path: Path) -> None:
    with TestClient(create_app(offline_settings(tmp_path, api_key="s3cret"))) as locked:
        problem = assert_problem(locked.get("/training-runs"), 401)
        assert "Bearer" in problem["detail"]
        assert locked.get("/training-runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert locked.get("/training-runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert locked.get("/healthz").status_code == 200
        assert locked.get("/metrics").status_code == 200


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["temporal"]["ok"] is False and "unreachable" in checks["temporal"]["detail"]

    def requests_to_one_run() -> float:
        labels = {"method": "GET", "route": "/training-runs/{run_id}", "status": "404"}
        families = text_string_to_metric_families(client.get("/metrics").text)
        samples = [s for f in families if f.name == "rlsched_http_requests" for s in f.samples]
        return sum(s.value for s in samples if s.name.endswith("_total") and s.labels == labels)

    before = requests_to_one_run()
    unknown = f"no-such-run-{uuid.uuid4().hex}"
    assert_problem(client.get(f"/training-runs/{unknown}"), 404)
    assert requests_to_one_run() == before + 1  # counted under the route's template ...
    assert unknown not in client.get("/metrics").text  # ... never under the raw path


def test_openapi_has_examples_and_problem_responses(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["PlanCreate"]["examples"]
    assert schema["components"]["schemas"]["TrainingRunCreate"]["examples"]
    assert "application/problem+json" in schema["paths"]["/schedule"]["post"]["responses"]["422"]["content"]


@pytest.mark.parametrize("policy", ["easy:sjf+deadline", "laxity+fastest", "strict:f1", "packing"])
def test_composed_heuristics_pass_validation(client: TestClient, policy: str) -> None:
    """Valid names get as far as Temporal (unreachable here: 503), not a 422."""
    assert_problem(client.post("/schedule", json={"nodes": [NODE], "jobs": [JOB], "policy": policy}), 503)


def test_malformed_heuristic_lists_what_exists(client: TestClient) -> None:
    body = {"nodes": [NODE], "jobs": [JOB], "policy": "sjf+closest"}
    detail = assert_problem(client.post("/schedule", json=body), 422)["detail"]
    assert "unknown placement 'closest'" in detail and "fastest" in detail
