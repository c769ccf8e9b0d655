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


def _hypothesis_jsonschema_compat() -> None:
    """hypothesis-jsonschema 0.23 drives `hypothesis...utils.many` through `.more()`, which
    the installed hypothesis (6.170) replaced with a context manager + iterator; every
    object schema then fails with AttributeError. Give that one module a `many` with the
    old method on top of the new protocol. Remove once the two packages agree again."""
    import types

    import hypothesis.internal.conjecture.utils as cu
    import hypothesis_jsonschema._from_schema as from_schema

    if hasattr(cu.many, "more"):
        return

    class CompatMany(cu.many):  # type: ignore[misc, name-defined]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            self.__enter__()
            self._steps = iter(self)

        def more(self) -> bool:
            if next(self._steps, StopIteration) is StopIteration:
                self.__exit__(None)
                return False
            return True

    proxy = types.ModuleType("cu_compat")
    proxy.__dict__.update(vars(cu))
    proxy.many = CompatMany  # type: ignore[attr-defined]
    from_schema.cu = proxy  # type: ignore[attr-defined]


_hypothesis_jsonschema_compat()


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
        "/schedule",
        "/schedule/{request_id}",
        "/checkpoints",
        "/checkpoints/{checkpoint_id}",
    }
