"""The dashboard in a real browser against the whole stack, nothing mocked: a real
Temporal dev server, a real worker process (with its Prometheus endpoints on), the app
served by uvicorn over HTTP with an API key, and headless Chromium (the Debian
`chromium` package, driven from its command line: `--dump-dom` for the page as the
browser built it, `--screenshot` for a picture; one profile for the whole test, so the
login cookie set by `?key=` carries over from page to page as in a user's browser).

A tiny run trains two rounds; the test checks its history in the index (every
iteration once), the worker's metrics after a plan and the rounds, then loads every
page and saves a screenshot of each under the test's tmp dir. With
RLSCHED_DOCS_SCREENSHOTS=1 it also refreshes docs/dashboard-run.png and
docs/dashboard-plan.png for the README.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from support.stack import ROOT, short_data_dir, wait_for, worker_process
from test_stack import CLUSTER, TINY_RUN, app_settings

from app.main import create_app
from worker.devserver import free_port

pytestmark = [pytest.mark.integration, pytest.mark.rl, pytest.mark.timeout(900)]

API_KEY = "dashboard-key"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RUN = {**TINY_RUN, "name": "dashboard", "iterations_per_round": 2, "max_rounds": 2, "deploy": "manual"}


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    with short_data_dir("rls-ui-") as path:
        yield path


@pytest.fixture(scope="module")
def worker(temporal_address: str, data_dir: Path) -> Iterator[tuple[str, int, int]]:
    """(task queue prefix, our metrics port, the SDK's metrics port)."""
    prefix = f"ui-{uuid.uuid4().hex[:6]}-"
    ours, sdk = free_port(), free_port()
    env = {
        "RLSCHED_WORKER_METRICS_PORT": str(ours),
        "RLSCHED_WORKER_SDK_METRICS_PORT": str(sdk),
        "RLSCHED_WORKER_METRICS_HOST": "127.0.0.1",
    }
    with worker_process(temporal_address, data_dir, prefix, env):
        yield prefix, ours, sdk


@pytest.fixture(scope="module")
def base_url(temporal_address: str, data_dir: Path, worker: tuple[str, int, int]) -> Iterator[str]:
    """The app on a real port (a browser cannot use TestClient), in a thread."""
    settings = app_settings(temporal_address, data_dir, worker[0]).model_copy(
        update={"api_key": SecretStr(API_KEY)}
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


class Browser:
    """Headless Chromium from its command line, one profile for every call."""

    def __init__(self, profile: Path, shots: Path) -> None:
        self.profile, self.shots = profile, shots

    def _run(self, *args: str) -> str:
        command = [
            CHROMIUM or "chromium",
            "--headless",
            "--no-sandbox",  # the tests run as root in a container
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={self.profile}",
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def dom(self, url: str) -> str:
        return self._run("--dump-dom", url)

    def screenshot(self, url: str, name: str, height: int = 1400) -> Path:
        path = self.shots / f"{name}.png"
        self._run(f"--window-size=1280,{height}", f"--screenshot={path}", url)
        assert path.is_file() and path.stat().st_size > 10_000, f"screenshot {path} is missing or blank"
        return path


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            head = line.split(" ", 1)[0]
            if head == name or head.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install -y chromium; make test does)")
def test_dashboard_pages_in_a_real_browser(
    base_url: str, worker: tuple[str, int, int], data_dir: Path, tmp_path: Path
) -> None:
    log = data_dir / "worker.log"
    _, ours, sdk = worker
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120)
    wait_for("readiness", lambda: api.get("/readyz").status_code == 200, 180, log)

    plan = api.post("/schedule", json={**CLUSTER, "policy": "sjf"})
    assert plan.status_code == 200, plan.text
    plan_id = plan.json()["id"]
    assert {p["priority"] for p in plan.json()["placements"]} == {1, 2, 3}
    metrics = scrape(ours)
    assert (
        sample(metrics, "rlsched_worker_plan_seconds_count", policy_kind="heuristic", outcome="completed")
        >= 1
    )

    created = api.post("/training-runs", json=RUN)
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    browser = Browser(tmp_path / "profile", tmp_path)
    assert "Log in" in browser.dom(f"{base_url}/ui")  # no key yet: the login form

    def status() -> str:
        return api.get(f"/training-runs/{run_id}").json()["status"]

    wait_for(
        "live progress",
        lambda: (
            (d := api.get(f"/training-runs/{run_id}").json())["live_progress"] or d["status"] != "running"
        ),
        420,
        log,
    )
    before = status()
    runs_dom = browser.dom(f"{base_url}/ui?key={API_KEY}")  # sets the login cookie in the profile
    assert f'href="/ui/runs/{run_id}"' in runs_dom and "dashboard" in runs_dom
    if before == status() == "running":  # caught while training: the round's progress bar
        assert 'class="bar"' in runs_dom and "it." in runs_dom

    done = wait_for(
        "the run to end",
        lambda: (d := api.get(f"/training-runs/{run_id}").json())["status"] == "completed" and d,
        600,
        log,
    )
    assert done["rounds_done"] == 2

    # History: every iteration of both rounds, each once, in order; rounds with their bound.
    page = api.get(f"/training-runs/{run_id}/metrics").json()
    numbers = [row["iteration"] for row in page["data"]]
    assert page["count"] == 4 and numbers == list(range(numbers[0], numbers[0] + 4))
    assert [row["round"] for row in page["data"]] == [1, 1, 2, 2]
    assert all(row["entropy"] is not None and row["env_steps_per_second"] for row in page["data"])
    rounds = api.get(f"/training-runs/{run_id}/metrics?series=rounds").json()["data"]
    assert [r["round"] for r in rounds] == [1, 2] and all(r["bound"] is not None for r in rounds)
    csv_text = api.get(f"/training-runs/{run_id}/metrics", headers={"Accept": "text/csv"}).text
    assert csv_text.splitlines()[0].startswith("round,iteration,") and len(csv_text.splitlines()) == 5

    metrics = scrape(ours)
    assert sample(metrics, "rlsched_worker_training_rounds_total", outcome="completed") == 2
    assert sample(metrics, "rlsched_worker_training_iterations_total") == 4
    assert "temporal_" in scrape(sdk)

    tight = api.post(
        "/schedule",
        json={
            "synthetic": {"workload": {"name": "deadline-tight", "nodes": 8, "jobs": 60}, "seed": 1},
            "policy": "edf",
        },
    )
    assert tight.status_code == 200, tight.text
    misses = sum(not p["meets_deadline"] for p in tight.json()["placements"])
    deployed = api.put("/policy/default", json={"policy": "edf+fastest"})
    assert deployed.status_code == 200, deployed.text

    pages = {
        "runs": (f"{base_url}/ui", [run_id, "completed"]),
        "run": (
            f"{base_url}/ui/runs/{run_id}",
            ['id="round-scores"', 'id="iteration-returns"', "empty-cluster bound"],
        ),
        "league": (f"{base_url}/ui/league", ["seed-demo", f"{run_id}-r1", "bound"]),
        "policies": (f"{base_url}/ui/policies", ["edf+fastest", "default"]),
        "plans": (f"{base_url}/ui/plans", [plan_id]),
        "clusters": (f"{base_url}/ui/clusters", ["No cluster registered yet", 'href="/ui/clusters"']),
        "cluster-plan": (f"{base_url}/ui/plans/{plan_id}", ['id="gantt"', "<svg", "huge", "priority 3"]),
        "plan": (
            f"{base_url}/ui/plans/{tight.json()['id']}",
            [f"misses deadline ({misses})", "node-000"],
        ),
    }
    for name, (url, expected) in pages.items():
        dom = browser.dom(url)
        missing = [text for text in expected if text not in dom]
        assert not missing, f"{name}: {missing} not in the page\n{dom[:3000]}"
        assert "Log in" not in dom
        browser.screenshot(url, name, height=1800 if name == "run" else 1000)
    if os.environ.get("RLSCHED_DOCS_SCREENSHOTS") == "1":
        docs = ROOT / "docs"
        docs.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "run.png", docs / "dashboard-run.png")
        shutil.copy(tmp_path / "plan.png", docs / "dashboard-plan.png")
