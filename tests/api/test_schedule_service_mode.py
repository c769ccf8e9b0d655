"""`RLSCHED_SCHEDULE_MODE=service`: plans as updates to one long-lived scheduler workflow.

The worker's real inference Worker (worker.main.build_workers, so SchedulerServiceWorkflow
and the plan activity as deployed) runs in a thread on the session's Temporal dev server;
the tests check the app's side: update-with-start on first use, the same workflow
answering every later request, input errors as 422 (from the update validator and from
the activity), and a 504 (marked timed out) when nothing answers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.inference_thread import inference_worker_thread
from temporalio.client import Client

from app.core.config import Settings
from app.main import create_app
from app.models import Checkpoint, Run
from app.services import plans
from worker.codec import DATA_CONVERTER
from worker.contracts import SchedulerServiceInput

CLUSTER = {
    "nodes": [{"id": "a", "cpus": 16, "gpus": {"p5": 8}}, {"id": "b", "cpus": 16, "gpus": {"p4": 4}}],
    "jobs": [
        *({"id": f"j{i}", "cpus": 2, "gpus": 2, "runtime_estimate_s": 600} for i in range(6)),
        {"id": "too-big", "gpus": 64, "runtime_estimate_s": 60},
    ],
    "policy": "sjf",
}


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"svc-{uuid.uuid4().hex[:6]}-"


@pytest.fixture(scope="module")
def service_worker(temporal_address: str, prefix: str) -> Iterator[None]:
    with inference_worker_thread(temporal_address, prefix, ready_timeout_s=30):
        yield


def make_client(
    temporal_address: str, prefix: str, tmp_path: Path, timeout_s: float = 30, database_url: str | None = None
) -> TestClient:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        temporal_address=temporal_address,
        task_queue_prefix=prefix,
        schedule_mode="service",
        schedule_timeout_s=timeout_s,
        reconcile_interval_s=0,
    )
    return TestClient(create_app(settings))


def test_plans_are_updates_to_one_service_workflow(
    temporal_address: str, prefix: str, service_worker: None, tmp_path: Path, database_url: str
) -> None:
    with make_client(temporal_address, prefix, tmp_path, database_url=database_url) as client:
        answers = [client.post("/schedule", json=CLUSTER) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200], answers[0].text
        plans = [a.json() for a in answers]
        assert {p["workflow_id"] for p in plans} == {f"scheduler-service-{prefix}rl-inference"}
        assert plans[0]["placements"] == plans[2]["placements"]
        assert {p["job_id"] for p in plans[0]["placements"]} == {f"j{i}" for i in range(6)}
        assert [u["job_id"] for u in plans[0]["unplaced"]] == ["too-big"]
        assert client.get(f"/schedule/{plans[1]['id']}").json()["placements"] == plans[1]["placements"]
        assert "wait;dur=" in answers[0].headers["server-timing"]
        accepted = client.post("/schedule", json={**CLUSTER, "async": True})
        assert accepted.status_code == 202 and accepted.json()["workflow_id"].startswith("schedule-")


def test_service_mode_times_out_as_504_when_nothing_answers(
    temporal_address: str, tmp_path: Path, database_url: str
) -> None:
    nobody = f"nobody-{uuid.uuid4().hex[:6]}-"
    with make_client(temporal_address, nobody, tmp_path, timeout_s=0.5, database_url=database_url) as client:
        response = client.post("/schedule", json=CLUSTER)
        assert response.status_code == 504, response.text
        assert client.get(f"/schedule/{response.json()['id']}").json()["status"] == "timed_out"


def _add_checkpoint(client: TestClient, checkpoint_id: str, location: str) -> None:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        session.add(Run(id=f"run-{checkpoint_id}", workflow_id=f"training-{checkpoint_id}", config={}))
        session.flush()  # the run before its checkpoint (foreign key)
        session.add(Checkpoint(id=checkpoint_id, run_id=f"run-{checkpoint_id}", round=1, location=location))
        session.commit()


def test_unplannable_input_is_422_from_the_validator_and_from_the_activity(
    temporal_address: str, prefix: str, service_worker: None, tmp_path: Path, database_url: str
) -> None:
    with make_client(temporal_address, prefix, tmp_path, database_url=database_url) as client:
        _add_checkpoint(client, "no-location", "")
        _add_checkpoint(client, "gone", str(tmp_path / "no-such-checkpoint"))
        rejected = client.post("/schedule", json={**CLUSTER, "policy": "no-location"})
        assert rejected.status_code == 422, rejected.text
        assert "names no checkpoint" in rejected.json()["detail"]
        failed = client.post("/schedule", json={**CLUSTER, "policy": "gone"})
        assert failed.status_code == 422, failed.text
        assert client.get(f"/schedule/{failed.json()['id']}").json()["status"] == "failed"
        assert client.post("/schedule", json=CLUSTER).status_code == 200


def test_plans_spread_over_several_service_workflows(
    temporal_address: str, prefix: str, service_worker: None, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        temporal_address=temporal_address,
        task_queue_prefix=prefix,
        schedule_service_instances=3,
        reconcile_interval_s=0,
    )
    with TestClient(create_app(settings)) as client:
        answers = [client.post("/schedule", json=CLUSTER) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 6, answers[0].text
        base = f"scheduler-service-{prefix}rl-inference"
        assert {a.json()["workflow_id"] for a in answers} == {base, f"{base}-1", f"{base}-2"}
        assert len({str(a.json()["placements"]) for a in answers}) == 1
        # Each instance was started with its share of the hand-over budget, so they
        # continue as new one at a time (instance 0 may be the earlier tests', started
        # with one instance configured: share 1).
        started = asyncio.run(start_inputs(temporal_address, [f"{base}-1", f"{base}-2"]))
        assert [i.first_run_share for i in started] == pytest.approx([2 / 3, 1.0])


async def start_inputs(address: str, workflow_ids: list[str]) -> list[SchedulerServiceInput]:
    client = await Client.connect(address, data_converter=DATA_CONVERTER)
    inputs = []
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
        [start] = await client.data_converter.decode(list(payloads), [SchedulerServiceInput])
        inputs.append(start)
    return inputs


def test_new_plans_skip_an_instance_that_is_handing_over(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(schedule_service_instances=3)
    queue = settings.inference_queue
    monkeypatch.setattr(plans, "_avoid_until", {(queue, 1): time.monotonic() + 60})
    picked = {plans.service_instance(settings) for _ in range(9)}
    assert picked == {0, 2}
    handing_over = {(queue, i): time.monotonic() + 60 for i in range(3)}
    monkeypatch.setattr(plans, "_avoid_until", handing_over)
    assert plans.service_instance(settings) in {0, 1, 2}, "all handing over: still one is picked"
