"""The clusters API end to end: the app in a TestClient, a real Temporal dev server, the
worker's real inference Worker in a thread, and a real emulated Slurm. Registration reads
the cluster through the worker; the loop's ticks reach the API and the dashboard through
the index; DELETE cancels the loop and Slurm is left as the last tick wrote it."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.api import assert_problem
from support.inference_thread import inference_worker_thread
from support.slurm_cluster import DEFAULT_NODES, SlurmCluster, StartSlurm

from app.core.config import Settings
from app.main import create_app

pytestmark = [pytest.mark.slurm, pytest.mark.integration]

WHOLE_P5 = ("--gres=gpu:p5:8", "-c", "8", "--mem=8000", "-t", "20")
WATCHED = ("JobState", "Priority", "ReqNodeList", "StartTime", "AdminComment")
"""What an `enforce` tick would write on a pending job: an `advise` tick leaves all of it."""


@pytest.fixture(scope="module")
def prefix(temporal_address: str) -> Iterator[str]:
    prefix = f"capi-{uuid.uuid4().hex[:6]}-"
    with inference_worker_thread(temporal_address, prefix, ready_timeout_s=30):
        yield prefix


@pytest.fixture
def api(temporal_address: str, prefix: str, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """An app whose allow-list is `allowed` (a cluster's directory), served by the
    module's inference worker unless given another queue prefix."""
    with contextlib.ExitStack() as stack:

        def make(allowed: Path, queue_prefix: str = prefix, database_url: str | None = None) -> TestClient:
            settings = Settings(
                data_dir=tmp_path,
                database_url=database_url,
                temporal_address=temporal_address,
                task_queue_prefix=queue_prefix,
                reconcile_interval_s=0.5,
                cluster_endpoints=str(allowed),
                cluster_probe_timeout_s=2,
            )
            client = stack.enter_context(TestClient(create_app(settings)))
            stack.callback(end_loops, client)  # a failed test leaves no loop ticking
            return client

        yield make


def end_loops(client: TestClient) -> None:
    for cluster in client.get("/clusters").json()["data"]:
        if cluster["status"] == "running":
            client.delete(f"/clusters/{cluster['name']}")


def wait_for(client: TestClient, url: str, done: Callable[[Any], bool], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        body = client.get(url).json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"{url} after {timeout_s} s: {body}"
        time.sleep(0.3)


def register(client: TestClient, slurm: SlurmCluster, name: str, mode: str) -> Any:
    body = {"name": name, "kind": "slurm", "endpoint": str(slurm.conf), "interval_s": 1, "mode": mode}
    return client.post("/clusters", json=body)


def test_advise_records_decisions_over_the_api_and_leaves_slurm_alone(
    api: Callable[..., TestClient], slurm: SlurmCluster, database_url: str
) -> None:
    """On SQLite and PostgreSQL: the app's reads and its reconciler index the same ticks."""
    client = api(slurm.root, database_url=database_url)
    jobs = [slurm.submit_deferred(*WHOLE_P5) for _ in range(2)]
    before = {job: {k: slurm.scontrol_show("job", job)[k] for k in WATCHED} for job in jobs}

    lab = f"lab-{uuid.uuid4().hex[:6]}"  # the session's Temporal server outlives the test
    created = register(client, slurm, lab, "advise")
    assert created.status_code == 201, created.text
    registered = created.json()
    assert created.headers["location"] == f"/clusters/{lab}"
    assert registered["workflow_id"] == f"cluster-{lab}" and registered["status"] == "running"
    assert registered["probe"] | {"notes": []} == {
        "reachable": True,
        "cause": None,
        "detail": None,
        "nodes": 8,
        "pending": 2,
        "running": 0,
        "skipped": 0,
        "notes": [],
    }
    assert_problem(register(client, slurm, lab, "advise"), 409)

    page = wait_for(client, f"/clusters/{lab}/decisions?limit=2", lambda b: b["count"] >= 2)
    newest, older = page["data"]
    assert newest["tick"] > older["tick"]
    assert page["next_offset"] == (2 if page["count"] > 2 else None)
    for tick in (newest, older):
        assert tick["mode"] == "advise" and tick["error"] is None and tick["pending"] == 2
        assert {d["job_id"] for d in tick["decisions"]} == set(jobs)
        assert {d["outcome"] for d in tick["decisions"]} == {"advised"}
    assert {d["node"] for d in newest["decisions"] if d["action"] == "start"} <= {
        "p5n1",
        "p5n2",
        "p5n3",
        "p5n4",
    }

    cluster = client.get(f"/clusters/{lab}").json()
    assert cluster["ticks"] >= 2 and cluster["failed_ticks"] == 0 and cluster["outcomes"]["advised"] >= 4
    assert cluster["last_tick"]["tick"] >= newest["tick"] and cluster["class"] == "default"
    assert [c["name"] for c in client.get("/clusters").json()["data"]] == [lab]
    assert f'href="/ui/clusters/{lab}"' in client.get("/ui/clusters").text
    assert "advised" in client.get(f"/ui/clusters/{lab}").text

    stopping = client.delete(f"/clusters/{lab}")
    assert stopping.status_code == 202 and stopping.json() == {
        "name": lab,
        "status": "stopping",
        "how": "cancel",
    }
    ended = wait_for(client, f"/clusters/{lab}", lambda b: b["status"] != "stopping", 30)
    assert ended["status"] == "stopped" and ended["stopped_at"] is not None
    time.sleep(2)  # two intervals: a loop still running would tick
    assert client.get(f"/clusters/{lab}").json()["ticks"] == ended["ticks"]
    assert_problem(client.delete(f"/clusters/{lab}"), 409)

    after = {job: {k: slurm.scontrol_show("job", job)[k] for k in WATCHED} for job in jobs}
    assert after == before  # advise wrote nothing: still pending, same priority, lease, comment

    again = register(client, slurm, lab, "advise")  # an ended loop's name can be registered again
    assert again.status_code == 201 and again.json()["ticks"] == 0
    assert client.delete(f"/clusters/{lab}").status_code == 202


def test_enforce_starts_a_pending_job_on_the_planned_node(
    api: Callable[..., TestClient], slurm: SlurmCluster
) -> None:
    client = api(slurm.root)
    job = slurm.submit_deferred(*WHOLE_P5)
    farm = f"farm-{uuid.uuid4().hex[:6]}"
    assert register(client, slurm, farm, "enforce").status_code == 201
    try:
        # the list answers from the index alone: the app's reconciler keeps it current
        wait_for(client, "/clusters", lambda b: b["data"][0]["ticks"] >= 1)
        page = wait_for(
            client,
            f"/clusters/{farm}/decisions",
            lambda b: any(d["outcome"] == "applied" for t in b["data"] for d in t["decisions"]),
        )
    finally:
        client.delete(f"/clusters/{farm}")
    applied = [d for t in page["data"] for d in t["decisions"] if d["outcome"] == "applied"]
    assert applied[-1]["job_id"] == job and applied[-1]["action"] == "start"
    assert slurm.wait_job_state(job, ["RUNNING"])["NodeList"] == applied[-1]["node"]


def test_registration_names_why_a_cluster_cannot_be_reached(
    api: Callable[..., TestClient], start_slurm: StartSlurm
) -> None:
    slurm = start_slurm(DEFAULT_NODES[:1])
    slurm.stop_controller()
    client = api(slurm.root)

    down = assert_problem(register(client, slurm, "down", "advise"), 503)
    assert str(slurm.conf) in down["detail"] and "cannot be reached" in down["detail"]
    assert "timed out" in down["detail"] or "is slurmctld up?" in down["detail"]

    missing = {"name": "missing", "endpoint": str(slurm.root / "nowhere" / "slurm.conf")}
    body = assert_problem(client.post("/clusters", json=missing), 422)
    assert body["errors"][0]["loc"] == ["body", "endpoint"] and "no slurm.conf at" in body["detail"]

    outside = assert_problem(
        client.post("/clusters", json={"name": "x", "endpoint": "/etc/slurm/slurm.conf"}), 422
    )
    assert "RLSCHED_CLUSTER_ENDPOINTS" in outside["detail"]
    assert client.get("/clusters").json()["count"] == 0  # nothing registered, no loop started

    unserved = api(slurm.root, queue_prefix=f"none-{uuid.uuid4().hex[:6]}-")
    nobody = assert_problem(register(unserved, slurm, "lonely", "advise"), 503)
    assert "no worker checked cluster 'lonely'" in nobody["detail"] and "none-" in nobody["detail"]
