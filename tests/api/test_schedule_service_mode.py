"""`RLSCHED_SCHEDULE_MODE=service`: plans as updates to one long-lived scheduler workflow.

The worker does not serve that workflow yet, so this test runs a reference version of it
(below: what the worker side needs, in a dozen lines) in an in-process Worker on the
session's Temporal dev server, and checks the app's side: update-with-start on first
use, the same workflow answering every later request, input errors as 422, and a 504
(marked timed out) when nothing answers."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from temporalio import workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from app.core.config import Settings
from app.main import create_app
from app.services.schedule import PLAN_UPDATE, SCHEDULER_SERVICE_WORKFLOW
from worker.contracts import PlanInput, PlanOutput

CLUSTER = {
    "nodes": [{"id": "a", "cpus": 16, "gpus": {"p5": 8}}, {"id": "b", "cpus": 16, "gpus": {"p4": 4}}],
    "jobs": [
        *({"id": f"j{i}", "cpus": 2, "gpus": 2, "runtime_estimate_s": 600} for i in range(6)),
        {"id": "too-big", "gpus": 64, "runtime_estimate_s": 60},
    ],
    "policy": "sjf",
}


@workflow.defn(name=SCHEDULER_SERVICE_WORKFLOW)
class ReferenceSchedulerService:
    """What the worker needs: answer `plan` updates with the plan activity run locally,
    and continue as new before history grows (after the handlers in flight finish)."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new()

    @workflow.update(name=PLAN_UPDATE)
    async def plan(self, request: PlanInput) -> PlanOutput:
        from worker.activities.inference import plan_schedule

        return await workflow.execute_local_activity(
            plan_schedule, request, start_to_close_timeout=timedelta(seconds=60)
        )


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"svc-{uuid.uuid4().hex[:6]}-"


@pytest.fixture(scope="module")
def service_worker(temporal_address: str, prefix: str) -> Iterator[None]:
    from worker.activities.inference import plan_schedule

    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        client = await Client.connect(temporal_address, data_converter=pydantic_data_converter)
        async with Worker(
            client,
            task_queue=f"{prefix}rl-inference",
            workflows=[ReferenceSchedulerService],
            activities=[plan_schedule],
            activity_executor=ThreadPoolExecutor(4),
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30), "the in-process worker did not start"
    yield
    stop.set()
    thread.join(30)


def make_client(temporal_address: str, prefix: str, tmp_path: Path, timeout_s: float = 30) -> TestClient:
    settings = Settings(
        data_dir=tmp_path,
        temporal_address=temporal_address,
        task_queue_prefix=prefix,
        schedule_mode="service",
        schedule_timeout_s=timeout_s,
        reconcile_interval_s=0,
    )
    return TestClient(create_app(settings))


def test_plans_are_updates_to_one_service_workflow(
    temporal_address: str, prefix: str, service_worker: None, tmp_path: Path
) -> None:
    with make_client(temporal_address, prefix, tmp_path) as client:
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


def test_service_mode_times_out_as_504_when_nothing_answers(temporal_address: str, tmp_path: Path) -> None:
    with make_client(temporal_address, f"nobody-{uuid.uuid4().hex[:6]}-", tmp_path, timeout_s=0.5) as client:
        response = client.post("/schedule", json=CLUSTER)
        assert response.status_code == 504, response.text
        assert client.get(f"/schedule/{response.json()['id']}").json()["status"] == "timed_out"
