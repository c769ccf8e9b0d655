"""Property-based tests of the whole API from its own OpenAPI schema (schemathesis 4): for
every operation, the examples, coverage and fuzzing phases send valid and invalid
requests, and no response may be a 500 (or a 502: the worker failing on input), nor a
status code, content type, header or body the schema does not document.

The app runs with its lifespan and an API key against the session's real Temporal dev
server and the worker's real inference Worker (worker.main.build_workers) on fresh
queues: every plan and deployment the fuzzer sends is computed by the worker, so input
that makes the worker fail shows up as the 502 it used to get. No training worker polls
the training queue: runs really start on Temporal but never train, and what needs that
worker (stopping a run) answers the documented 503 after a short timeout. Examples per
operation are few so this stays within a few minutes on 2 cores; the bounds themselves
are tested in tests/api/test_input_bounds.py."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema
from support.db_backends import BACKENDS, backend_url
from support.inference_thread import inference_worker_thread

from app.core.config import Settings
from app.main import create_app

API_KEY = "schemathesis-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MAX_EXAMPLES = 8

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261124,
        # The key as the schema declares it (HTTPBearer), so schemathesis knows requests
        # carry it, and its own auth checks send them without it too.
        "auth": {"openapi": {"HTTPBearer": {"bearer": API_KEY}}},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
        },
        "checks": {
            # No training worker: 503 (Temporal could not answer in time) is a documented
            # answer, and so is 504 (a plan that outran its time); any other 5xx is not.
            "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503", "504"]},
            # Schema-valid bodies can still break rules JSON Schema cannot say (duplicate
            # node ids, nodes and synthetic together, an unknown heuristic name): 422.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "404", "409", "422", "503", "504"]
            },
        },
    }
)


@pytest.fixture(scope="module")
def inference_prefix(temporal_address: str) -> Iterator[str]:
    """The worker's real inference Worker in a thread, on fresh queues; no training worker."""
    prefix = f"fuzz-{uuid.uuid4().hex[:6]}-"
    with inference_worker_thread(temporal_address, prefix):
        yield prefix


@pytest.fixture(scope="module", params=BACKENDS)
def api_schema(
    request: pytest.FixtureRequest,
    temporal_address: str,
    inference_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[object]:
    """The app once on SQLite and once on PostgreSQL: generated strings reach the
    database too (ids in paths, names, reasons), and PostgreSQL is stricter about them."""
    data_dir = tmp_path_factory.mktemp("schemathesis")
    app = create_app(
        Settings(
            data_dir=data_dir,
            database_url=backend_url(request, request.param, data_dir),
            temporal_address=temporal_address,
            task_queue_prefix=inference_prefix,
            schedule_timeout_s=10,
            temporal_rpc_timeout_s=0.5,
            reconcile_interval_s=0,
            api_key=API_KEY,
        )
    )
    with TestClient(app):  # runs the lifespan: migrations, Temporal client
        yield schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG, headers=AUTH)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    response = case.call_and_validate()
    assert response.status_code not in (500, 502), response.text


def test_the_fuzzer_got_real_plans(api_schema: BaseSchema) -> None:
    """What the fuzzer sends POST /schedule (the schema's examples and generated bodies,
    as above) includes plans the worker computes: so the absence of 502s above means
    something."""
    operation = api_schema["/schedule"]["POST"]
    statuses: Counter[int] = Counter()

    @given(case=st.one_of(*operation.get_strategies_from_examples(), operation.as_strategy()))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def send(case: schemathesis.Case) -> None:
        statuses[case.call().status_code] += 1

    send()
    assert statuses[200] > 0, statuses


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
        "/policy-deployments/{deployment_id}",
        "/policy/{policy_class}",
        "/clusters",
        "/clusters/{name}",
        "/clusters/{name}/decisions",
    }


def test_every_operation_documents_the_shared_problems(tmp_path: Path) -> None:
    """400/413/415/422 wherever a body is taken, 401/503 beyond the public probes, all as
    problem+json: what the app answers to malformed, oversized, non-JSON, invalid or
    unauthenticated requests, and while Temporal or the database is away."""
    app = create_app(Settings(data_dir=tmp_path, reconcile_interval_s=0))
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "422" in codes, (method, path, codes)
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= codes, (method, path, codes)
            if path not in ("/healthz", "/readyz", "/metrics"):
                assert {"401", "503"} <= codes, (method, path, codes)
            for code in codes - {"200", "201", "202"}:
                content = operation["responses"][code].get("content", {})
                if code in ("401", "413", "415", "422"):
                    assert "application/problem+json" in content, (method, path, code)
