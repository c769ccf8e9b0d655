"""Every number a plan request carries is strict and bounded at the boundary: a degenerate
value (5e-324 CPUs, `false` as memory, a GPU of speed 5e-324, NaN, a number in a string)
is a 422 problem naming the field, never a plan that divides by zero in the worker (the
502 such input used to get). And a request at the extremes that *is* allowed plans fine:
checked here through the real stack (app, Temporal dev server, the worker's inference
Worker), and on many generated requests in tests/worker/test_plan_bounds.py."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.api import offline_settings
from support.inference_thread import inference_worker_thread

from app.main import create_app
from worker.contracts import (
    MAX_CPUS,
    MAX_GPU_SPEED,
    MAX_GPUS,
    MAX_MEMORY_GB,
    MAX_RUNTIME_S,
    MAX_TIME_S,
    MIN_CPUS,
    MIN_GPU_SPEED,
    MIN_GPUS,
    MIN_SECONDS,
)

NODE = {"id": "n1", "cpus": 32, "memory_gb": 256, "gpus": {"p5": 8}}
JOB = {"id": "j1", "cpus": 4, "gpus": 1, "runtime_estimate_s": 600, "deadline_s": 3600}

NOT_A_NUMBER = st.one_of(
    st.booleans(),
    st.from_regex(r"[0-9]{1,4}", fullmatch=True),
    st.none(),
    st.just([1]),
    st.just({"value": 1}),
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
NEGATIVE = st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False)
TINY = st.floats(min_value=5e-324, max_value=MIN_CPUS / 2)
HUGE = st.floats(min_value=1.01e9, max_value=1e308)

DEGENERATE: dict[tuple[str, str], st.SearchStrategy] = {
    ("nodes", "cpus"): st.one_of(NOT_A_NUMBER, NON_FINITE, NEGATIVE, TINY, HUGE, st.just(0)),
    ("nodes", "memory_gb"): st.one_of(NOT_A_NUMBER, NON_FINITE, NEGATIVE, HUGE),
    ("jobs", "cpus"): st.one_of(NOT_A_NUMBER, NON_FINITE, NEGATIVE, TINY, HUGE, st.just(0)),
    ("jobs", "memory_gb"): st.one_of(NOT_A_NUMBER, NON_FINITE, NEGATIVE, HUGE),
    ("jobs", "gpus"): st.one_of(NOT_A_NUMBER, NON_FINITE, NEGATIVE, TINY, HUGE),
    ("jobs", "runtime_estimate_s"): st.one_of(NOT_A_NUMBER, NON_FINITE, NEGATIVE, TINY, HUGE),
    ("jobs", "deadline_s"): st.one_of(NOT_A_NUMBER.filter(lambda v: v is not None), NON_FINITE, TINY, HUGE),
    ("jobs", "submit_s"): st.one_of(NOT_A_NUMBER, NON_FINITE, NEGATIVE, HUGE),
    ("jobs", "priority"): st.one_of(NOT_A_NUMBER, st.just(2.0), st.just(2.5), st.integers(4, 10**6)),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(offline_settings(tmp_path_factory.mktemp("bounds")))) as test_client:
        yield test_client


def send(client: TestClient, method: str, path: str, body: object):  # type: ignore[no-untyped-def]
    """JSON as Python writes it, NaN and Infinity included (httpx refuses to send them)."""
    headers = {"content-type": "application/json"}
    return client.request(method, path, content=json.dumps(body), headers=headers)


def assert_422_naming(response, field: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    locations = [error["loc"] for error in problem["errors"]]
    assert any(field in loc for loc in locations) or field in problem["detail"], problem


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_degenerate_number_is_a_422_naming_the_field(client: TestClient, data: st.DataObject) -> None:
    kind, field = data.draw(st.sampled_from(sorted(DEGENERATE)), label="field")
    value = data.draw(DEGENERATE[(kind, field)], label="value")
    body = {"nodes": [dict(NODE)], "jobs": [dict(JOB)], "policy": "edf"}
    body[kind][0][field] = value
    assert_422_naming(send(client, "POST", "/schedule", body), field)


@pytest.mark.parametrize(
    ("node", "field"),
    [
        ({**NODE, "cpus": 5e-324, "memory_gb": False}, "cpus"),  # the worker's ZeroDivisionError
        ({**NODE, "memory_gb": False}, "memory_gb"),
        ({**NODE, "gpus": {"x": 1}, "gpu_speed": {"x": 5e-324}}, "gpu_speed"),  # runtimes of inf
        ({**NODE, "gpus": {"x": 1}, "gpu_speed": {"x": 1e9}}, "gpu_speed"),
        ({**NODE, "gpus": {"p5": 5e-324}}, "gpus"),
        ({**NODE, "gpus": {"p5": True}}, "gpus"),
        ({**NODE, "gpus": {"../p5": 1}}, "gpus"),
        (
            {**NODE, "gpus": {f"t{i}": 1 for i in range(17)}, "gpu_speed": {f"t{i}": 1 for i in range(17)}},
            "gpus",
        ),
        ({**NODE, "id": "n\x00"}, "id"),
    ],
)
def test_degenerate_nodes_are_422_naming_the_field(client: TestClient, node: dict, field: str) -> None:
    assert_422_naming(
        send(client, "POST", "/schedule", {"nodes": [node], "jobs": [JOB], "policy": "edf"}), field
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"synthetic": {"workload": {"name": "steady", "load": 5e-324}}}, "load"),
        ({"synthetic": {"workload": {"name": "steady", "nodes": True}}}, "nodes"),
        ({"synthetic": {"seed": 1.5}}, "seed"),
        ({"nodes": [NODE], "jobs": [JOB], "window": 8.0}, "window"),
        ({"nodes": [NODE], "jobs": [JOB], "async": "yes"}, "async"),
        ({"nodes": [NODE], "jobs": [JOB], "async": 1}, "async"),
    ],
)
def test_other_plan_numbers_and_flags_are_strict(client: TestClient, body: dict, field: str) -> None:
    assert_422_naming(send(client, "POST", "/schedule", body), field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ppo": {"lr": 5e-324}}, "lr"),
        ({"ppo": {"gamma": False}}, "gamma"),
        ({"ppo": {"train_batch_size": "4096"}}, "train_batch_size"),
        ({"iterations_per_round": True}, "iterations_per_round"),
        ({"max_rounds": 2.0}, "max_rounds"),
        ({"seed": -1}, "seed"),
        ({"name": "bad\x00name"}, "name"),
        ({"ppo": {"distill": {"search": "search:nope"}}}, "search"),
        ({"ppo": {"distill": {"search": "search:edf+nowhere"}}}, "search"),
        ({"ppo": {"distill": {"weight": 1e3}}}, "weight"),
        ({"ppo": {"distill": {"weight": 0}}}, "weight"),
        ({"ppo": {"distill": {"weight": -1}}}, "weight"),
        ({"ppo": {"distill": {"episodes_per_round": 0}}}, "episodes_per_round"),
        ({"ppo": {"distill": {"episodes_per_round": 1.5}}}, "episodes_per_round"),
        ({"eval_search": {"enabled": "yes"}}, "enabled"),
        ({"eval_search": {"options": {"budget_ms": 0}}}, "budget_ms"),
    ],
)
def test_training_run_numbers_are_strict_and_bounded(client: TestClient, body: dict, field: str) -> None:
    assert_422_naming(send(client, "POST", "/training-runs", body), field)


def test_policy_force_is_a_real_boolean(client: TestClient) -> None:
    assert_422_naming(send(client, "PUT", "/policy/default", {"policy": "edf", "force": "true"}), "force")


# --- a valid extreme request plans fine, through the real stack ---------------------------

EXTREME_NODES = [
    {
        "id": "smallest",
        "cpus": MIN_CPUS,
        "memory_gb": 0,
        "gpus": {"slow": MIN_GPUS},
        "gpu_speed": {"slow": MIN_GPU_SPEED},
    },
    {
        "id": "largest",
        "cpus": MAX_CPUS,
        "memory_gb": MAX_MEMORY_GB,
        "gpus": {"p5": MAX_GPUS, "fast": MAX_GPUS},
        "gpu_speed": {"fast": MAX_GPU_SPEED},
    },
    {"id": "down", "cpus": 1, "status": "DOWN"},
]
EXTREME_JOBS = [
    {
        "id": "tiny",
        "cpus": MIN_CPUS,
        "gpus": MIN_GPUS,
        "runtime_estimate_s": MIN_SECONDS,
        "deadline_s": MIN_SECONDS,
    },
    {
        "id": "huge",
        "cpus": MAX_CPUS,
        "memory_gb": MAX_MEMORY_GB,
        "gpus": MAX_GPUS,
        "gpu_types": ["fast"],
        "priority": 3,
        "runtime_estimate_s": MAX_RUNTIME_S,
        "deadline_s": MAX_TIME_S,
        "submit_s": MAX_TIME_S,
    },
    {
        "id": "slow-gpu",
        "cpus": MIN_CPUS,
        "gpus": MIN_GPUS,
        "gpu_types": ["slow"],
        "runtime_estimate_s": MAX_RUNTIME_S,
    },
    {"id": "nowhere", "cpus": MAX_CPUS, "gpus": MAX_GPUS, "gpu_types": ["slow"], "runtime_estimate_s": 1},
]


@pytest.fixture(scope="module")
def inference_prefix(temporal_address: str) -> Iterator[str]:
    """The worker's real inference Worker (build_workers) in a thread, on fresh queues."""
    prefix = f"bounds-{uuid.uuid4().hex[:6]}-"
    with inference_worker_thread(temporal_address, prefix):
        yield prefix


@pytest.mark.parametrize("policy", ["edf", "sjf+fastest", "easy:sjf+deadline", "fifo+fgd", "packing"])
def test_a_valid_extreme_request_plans_fine(
    temporal_address: str, inference_prefix: str, tmp_path: Path, policy: str
) -> None:
    settings_ = offline_settings(
        tmp_path, temporal_address=temporal_address, task_queue_prefix=inference_prefix, schedule_timeout_s=60
    )
    body = {"nodes": EXTREME_NODES, "jobs": EXTREME_JOBS, "policy": policy, "baseline": "sjf"}
    with TestClient(create_app(settings_)) as api:
        response = api.post("/schedule", json=body)
    assert response.status_code == 200, response.text
    plan = response.json()
    placed = {p["job_id"]: p for p in plan["placements"]}
    unplaced = {u["job_id"]: u["reason"] for u in plan["unplaced"]}
    assert set(placed) | set(unplaced) == {j["id"] for j in EXTREME_JOBS}
    assert "nowhere" in unplaced and {"tiny", "huge", "slow-gpu"} <= set(placed), plan
    assert placed["huge"]["node_id"] == "largest" and placed["slow-gpu"]["node_id"] == "smallest"
    for p in placed.values():
        assert math.isfinite(p["start_s"]) and math.isfinite(p["finish_s"]) and p["finish_s"] >= p["start_s"]
    for metrics in (plan["metrics"], plan["baseline"]["metrics"]):
        assert all(v is not None and math.isfinite(v) for v in metrics.values()), metrics
