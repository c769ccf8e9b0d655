"""Security rules of the API, checked route by route from `app.routes` so that a route
added later (a `/ui` page, a mounted static directory) is covered without editing this file:

- with RLSCHED_API_KEY set, everything but /healthz, /readyz and /metrics answers 401
  problem+json without the key or with a wrong one, before any body is read;
- ids and names from clients (checkpoint ids, run ids, schedule ids, workload classes,
  policy names) with `..`, `/`, `\\`, NUL or a URI scheme are a 422 before any file is
  touched, in every route, and the worker's contracts refuse them too.

Temporal is deliberately unreachable: none of these answers may depend on it."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.routing import BaseRoute, Mount
from support.api import offline_settings

from app.auth import PUBLIC_PATHS
from app.main import create_app
from app.ui import auth as ui_auth
from worker.contracts import (
    Deployment,
    EvaluateInput,
    PlanInput,
    PolicyRef,
    SmokeInput,
    StoreCheckpointInput,
    TrainingRunConfig,
    TrainRoundInput,
    WorkloadConfig,
)

KEY = "a-long-enough-secret-key"
PROBLEM = "application/problem+json"


def add_later_routes(app: FastAPI, static_dir: Path) -> None:
    """What another engineer might add after this test was written: a `/ui` router and a
    mounted static directory, with no auth dependency of their own (the dashboard's own
    pages use `require_ui_login`; these forget it)."""
    ui = APIRouter(prefix="/ui")

    @ui.get("/later", response_class=HTMLResponse, include_in_schema=False)
    async def later_page() -> str:
        return "<h1>later</h1>"

    @ui.post("/runs/{run_id}/later-stop", include_in_schema=False)
    async def stop_from_ui(run_id: str) -> dict:
        return {"stopped": run_id}

    app.include_router(ui)
    static_dir.mkdir(exist_ok=True)
    (static_dir / "app.js").write_text("console.log('ui')")
    app.mount("/ui/static", StaticFiles(directory=static_dir), name="ui-static")


def is_ui(path: str) -> bool:
    return path == ui_auth.PREFIX or path.startswith(ui_auth.PREFIX + "/")


def refused(response, path: str) -> bool:  # type: ignore[no-untyped-def]
    """The API refuses with a 401 problem; the dashboard, a browser area, with a redirect
    to its login page (never the page itself)."""
    if is_ui(path):
        return response.status_code == 303 and response.headers["location"].startswith(ui_auth.LOGIN_PATH)
    return (
        response.status_code == 401
        and response.headers["content-type"].startswith(PROBLEM)
        and response.headers["www-authenticate"] == "Bearer"
        and response.json()["status"] == 401
    )


def every_route(app: FastAPI) -> Iterator[BaseRoute]:
    """`app.routes` with included routers expanded (FastAPI >= 0.163 keeps an included
    router as one entry; iter_route_contexts yields its routes with their full paths)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        yield from app.routes
        return
    yield from iter_route_contexts(app.routes)  # type: ignore[misc]


def concrete_requests(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) requests that reach every route of `app`: every method it serves,
    its path parameters filled with a plain id; a mount, a file inside it."""
    for route in every_route(app):
        path = getattr(route, "path", "") or ""
        filled = re.sub(r"\{[^}]+\}", "x1", path)
        if isinstance(getattr(route, "route", route), Mount):
            yield "GET", filled.rstrip("/") + "/app.js"
            continue
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method != "HEAD":
                yield method, filled


@pytest.fixture
def keyed_app(tmp_path: Path) -> Iterator[tuple[FastAPI, TestClient]]:
    app = create_app(offline_settings(tmp_path, api_key=KEY))
    add_later_routes(app, tmp_path / "static")
    with TestClient(app) as client:
        yield app, client


def test_every_route_but_the_probes_wants_the_key(keyed_app: tuple[FastAPI, TestClient]) -> None:
    app, client = keyed_app
    checked: list[str] = []
    wrong = ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Cookie": f"{ui_auth.COOKIE}=x"})
    for method, path in concrete_requests(app):
        for headers in wrong:
            response = client.request(
                method, path, headers=headers, content=b"{not json", follow_redirects=False
            )
            if path in PUBLIC_PATHS or path in ui_auth.OPEN_PATHS:
                assert response.status_code != 401 and "/ui/login?" not in response.headers.get(
                    "location", ""
                )
                continue
            assert refused(response, path), (method, path, headers, response.status_code, response.text)
        checked.append(f"{method} {path}")
    later = {"GET /ui/later", "POST /ui/runs/x1/later-stop", "GET /ui/static/app.js"}
    assert later | {"GET /ui", "GET /ui/runs/x1", "GET /ui/login", "POST /ui/login"} <= set(checked)
    assert {"POST /schedule", "GET /openapi.json", "GET /docs", "PUT /policy/x1"} <= set(checked)
    assert {"GET /healthz", "GET /readyz", "GET /metrics"} <= set(checked)
    wrong_key = client.get("/ui/later?key=wrong", follow_redirects=False)
    assert refused(wrong_key, "/ui/later") and "failed=1" in wrong_key.headers["location"]


def test_the_dashboard_cookie_opens_the_dashboard_and_never_the_api(
    keyed_app: tuple[FastAPI, TestClient],
) -> None:
    app, client = keyed_app
    login = client.post(
        "/ui/login",
        content=urlencode({"key": KEY, "next": "/ui/later"}),
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert login.status_code == 303 and client.cookies.get(ui_auth.COOKIE)
    cookie = {"Cookie": f"{ui_auth.COOKIE}={client.cookies.get(ui_auth.COOKIE)}"}
    client.cookies.clear()
    assert client.get("/ui/later", headers=cookie).text == "<h1>later</h1>"
    assert client.get("/ui/static/app.js", headers=cookie).status_code == 200
    for method, path in concrete_requests(app):
        if not is_ui(path) and path not in PUBLIC_PATHS:
            response = client.request(method, path, headers=cookie, json={}, follow_redirects=False)
            assert refused(response, path), (method, path, response.status_code)


def test_the_right_key_opens_every_route(keyed_app: tuple[FastAPI, TestClient]) -> None:
    app, client = keyed_app
    for scheme in ("Bearer", "bearer"):
        headers = {"Authorization": f"{scheme} {KEY}"}
        for method, path in concrete_requests(app):
            response = client.request(method, path, headers=headers, json={}, follow_redirects=False)
            assert response.status_code != 401, (method, path, response.text)
            assert "/ui/login?" not in response.headers.get("location", ""), (method, path)
    assert client.get("/ui/static/app.js", headers=headers).text == "console.log('ui')"


def test_without_a_configured_key_nothing_asks_for_one(tmp_path: Path) -> None:
    app = create_app(offline_settings(tmp_path))
    add_later_routes(app, tmp_path / "static")
    with TestClient(app) as client:
        for method, path in concrete_requests(app):
            response = client.request(method, path, json={}, follow_redirects=False)
            assert response.status_code != 401, (method, path)
            assert "/ui/login?" not in response.headers.get("location", ""), (method, path)


def test_the_key_is_compared_in_constant_time() -> None:
    import inspect

    from app import auth
    from app.api import deps

    assert "compare_digest" in inspect.getsource(auth._same)
    assert "_same(" in inspect.getsource(auth.ApiKeyMiddleware.allowed)
    assert "compare_digest" in inspect.getsource(deps.require_api_key)


# --- ids never reach a path ---------------------------------------------------------------

BAD_IDS = [
    "..",
    "../secret",
    "secret/../../etc/passwd",
    "secret/x",
    "/etc/secret",
    "secret\\x",
    "..\\secret",
    "secret\x00x",
    "file:///etc/secret",
    "file:secret",
    "s3://bucket/secret",
    "http://example.com/secret",
    "C:\\secret",
]


RELATIVE_TRACE_PATHS = {"secret/x"}
"""Legitimate as `trace:swf:PATH`: a file in a subdirectory of the traces directory, where
the worker pins it (see contracts.swf_path_problem)."""


class FileWatch:
    """Records filesystem access (Python's audit events) while armed, so a test can show
    that a rejected request touched no file named after its input. Audit hooks cannot be
    removed, so one hook is installed per process and armed per request."""

    EVENTS = ("open", "os.listdir", "os.scandir", "os.mkdir", "os.remove", "os.rename", "shutil.")
    hook_installed = False
    armed = False
    seen: list[str] = []

    @classmethod
    def install(cls) -> None:
        if not cls.hook_installed:
            sys.addaudithook(cls._hook)
            cls.hook_installed = True

    @classmethod
    def _hook(cls, event: str, args: tuple) -> None:
        if cls.armed and event.startswith(cls.EVENTS):
            cls.seen.append(f"{event} {args[:1]!r}")

    @classmethod
    def touched(cls, needle: str) -> list[str]:
        return [s for s in cls.seen if needle in s]


def id_placements(bad: str) -> list[tuple[str, str, object]]:
    """Every place a request carries an id or a name: (method, path, JSON body or None).
    Dots are sent encoded too, or the HTTP client would resolve `..` segments itself."""
    segment = quote(bad, safe="").replace(".", "%2E")
    node, job = {"id": "n", "cpus": 8}, {"id": "j", "runtime_estimate_s": 60}
    return [
        ("GET", f"/checkpoints/{segment}", None),
        ("GET", f"/checkpoints?run_id={segment}", None),
        ("GET", f"/training-runs/{segment}", None),
        ("POST", f"/training-runs/{segment}/stop", None),
        ("GET", f"/schedule/{segment}", None),
        ("GET", f"/training-runs/{segment}/metrics", None),
        ("GET", f"/training-runs?schedule_id={segment}", None),
        ("GET", f"/training-schedules/{segment}", None),
        ("POST", f"/training-schedules/{segment}/pause", None),
        ("POST", f"/training-schedules/{segment}/trigger", None),
        ("DELETE", f"/training-schedules/{segment}", None),
        ("PUT", f"/policy/{segment}", {"policy": "edf"}),
        ("PUT", "/policy/default", {"policy": bad}),
        ("POST", "/schedule", {"nodes": [node], "jobs": [job], "policy": bad}),
        ("POST", "/schedule", {"nodes": [node], "jobs": [job], "class": bad}),
        ("POST", "/training-runs", {"resume_from_checkpoint": bad}),
        ("POST", "/training-runs", {"deploy_class": bad}),
    ] + [
        ("POST", "/schedule", {"synthetic": {"workload": {"name": f"trace:swf:{bad}"}}}),
        ("POST", "/training-runs", {"workload": {"name": f"trace:swf:{bad}"}}),
    ] * (bad not in RELATIVE_TRACE_PATHS)


@pytest.fixture(scope="module")
def open_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    FileWatch.install()
    with TestClient(create_app(offline_settings(tmp_path_factory.mktemp("ids")))) as client:
        yield client


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_with_path_characters_are_422_before_any_file_is_touched(
    open_client: TestClient, bad: str
) -> None:
    for method, path, body in id_placements(bad):
        FileWatch.seen.clear()
        FileWatch.armed = True
        try:
            response = open_client.request(method, path, json=body)
        finally:
            FileWatch.armed = False
        # A `/` inside a one-segment path parameter (sent as %2F, decoded by the server)
        # makes the URL another route's, or none: a 404 or 405 that looked nothing up is
        # as safe as the 422. `/policy/{class}` takes slashes, so it must be the 422.
        one_segment = path.startswith(
            ("/training-runs/", "/schedule/", "/checkpoints/", "/training-schedules/")
        )
        allowed = {404, 405, 422} if "/" in bad and one_segment else {422}
        assert response.status_code in allowed, (method, path, body, response.status_code, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
        assert not FileWatch.touched("secret"), (method, path, FileWatch.touched("secret"))


def test_plain_ids_and_names_still_work(open_client: TestClient) -> None:
    assert open_client.get("/checkpoints/run-1.r2").status_code == 404
    assert open_client.get("/checkpoints", params={"run_id": "abc123"}).status_code == 200
    assert open_client.get("/training-runs/0123456789ab").status_code == 404
    # Valid names get past validation (then Temporal, unreachable here, is the 503).
    body = {"nodes": [{"id": "n", "cpus": 8}], "jobs": [{"id": "j", "runtime_estimate_s": 60}]}
    for policy in ("easy:sjf+deadline", "edf+fastest", "best"):
        response = open_client.post(
            "/schedule", json={**body, "policy": policy, "class": "trace:swf:swf/x.swf"}
        )
        assert response.status_code == 503, response.text
    assert open_client.post("/schedule", json={**body, "policy": "no-such-checkpoint"}).status_code == 422


@pytest.mark.parametrize("bad", BAD_IDS)
def test_the_worker_contracts_refuse_them_too(bad: str) -> None:
    """Whoever starts a workflow (the app, the CLI, another client of Temporal), the worker
    decodes its input with these models and refuses what the API refuses."""
    run = {"run_id": "r1"}
    attempts = [
        lambda: TrainingRunConfig(run_id=bad),
        lambda: TrainRoundInput(
            run_id=bad, round=1, config=TrainingRunConfig(**run), output_dir="r1/round-0001"
        ),
        lambda: StoreCheckpointInput(run_id=bad, round=1, checkpoint="/ckpt/r1", output_dir="r1/round-0001"),
        lambda: PolicyRef(kind="checkpoint", name=bad, checkpoint="/ckpt/r1"),
        lambda: PolicyRef(kind="deployed", name=bad),
        lambda: Deployment(policy_class=bad, policy="edf", kind="heuristic"),
        lambda: Deployment(policy_class="default", policy=bad, kind="checkpoint", checkpoint="/c"),
    ]
    if bad not in RELATIVE_TRACE_PATHS:
        attempts.append(lambda: WorkloadConfig(name=f"trace:swf:{bad}"))
    if ".." in bad or "\\" in bad or "\x00" in bad:  # locations: absolute paths and URIs are the store's own
        attempts += [
            lambda: TrainingRunConfig(run_id="r1", resume_from=bad),
            lambda: TrainingRunConfig(run_id="r1", checkpoint_dir=bad),
            lambda: TrainRoundInput(run_id="r1", round=1, config=TrainingRunConfig(**run), output_dir=bad),
            lambda: StoreCheckpointInput(run_id="r1", round=1, checkpoint=bad, output_dir="r1/round-0001"),
            lambda: EvaluateInput(checkpoint=bad, workload=WorkloadConfig()),
            lambda: PolicyRef(kind="checkpoint", name="r1-r1", checkpoint=bad),
            lambda: SmokeInput(output_dir=bad),
        ]
    for attempt in attempts:
        with pytest.raises(ValidationError):
            attempt()


def test_double_dots_anywhere_in_an_id_are_refused(open_client: TestClient) -> None:
    assert open_client.get("/checkpoints/a%2E%2Eb").status_code == 422
    with pytest.raises(ValidationError):
        TrainingRunConfig(run_id="a..b")


def test_the_worker_contracts_keep_legitimate_locations() -> None:
    for location in (
        "/data/checkpoints/r1/round-0001",
        "r1/round-0001",
        "s3://bucket/ckpt/r1",
        "file:///x/y",
    ):
        TrainRoundInput(run_id="r1", round=1, config=TrainingRunConfig(run_id="r1"), output_dir=location)
        PolicyRef(kind="checkpoint", name="r1-r2", checkpoint=location)
    PlanInput(synthetic={}, policy=PolicyRef(kind="deployed", name="trace:swf:swf/lublin_256.swf"))
    Deployment(policy_class="trace:alibaba-default:train", policy="easy:sjf+deadline", kind="heuristic")


def test_the_file_watch_sees_a_file_being_opened(tmp_path: Path) -> None:
    FileWatch.install()
    FileWatch.seen.clear()
    FileWatch.armed = True
    try:
        (tmp_path / "secret-probe").write_text("x")
    finally:
        FileWatch.armed = False
    assert FileWatch.touched("secret-probe")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/training-runs", "GET, POST"),
        ("DELETE", "/schedule", "POST"),
        ("PATCH", "/policy/x", "PUT"),
    ],
)
def test_a_405_lists_every_method_of_the_path(
    open_client: TestClient, method: str, path: str, allow: str
) -> None:
    response = open_client.request(method, path)
    assert response.status_code == 405 and response.headers["allow"] == allow
    assert response.headers["content-type"].startswith(PROBLEM)
