"""Training schedules on a real Temporal dev server with a real worker process: a 2 s
interval schedule fires a tiny run that the reconciler indexes (with its schedule_id,
once) and the worker trains to the end under the run id derived from its workflow id;
pause stops new runs, trigger starts one, delete removes the schedule from Temporal; a
paused cron schedule shows its next times from Temporal."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.stack import short_data_dir, wait_for, worker_process
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from app.core.config import Settings
from app.main import create_app
from app.models import TrainingRunCreate
from worker.stack import Child

pytestmark = [pytest.mark.integration, pytest.mark.rl, pytest.mark.timeout(600)]

TINY_RUN = {
    "name": "scheduled-tiny",
    "workload": {"name": "seed-demo", "nodes": 4, "window": 8, "jobs": 40},
    "ppo": {"train_batch_size": 256, "minibatch_size": 128, "num_epochs": 1, "num_envs_per_env_runner": 4},
    "iterations_per_round": 1,
    "max_rounds": 1,
    "eval_episodes": 1,
    "seed": 3,
}


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    with short_data_dir("rls-sch-") as path:
        yield path


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"sch-{uuid.uuid4().hex[:6]}-"


@pytest.fixture(scope="module")
def worker(temporal_address: str, data_dir: Path, prefix: str) -> Iterator[Child]:
    with worker_process(temporal_address, data_dir, prefix) as process:
        yield process


async def _describe_schedule(address: str, schedule_id: str) -> RPCError | None:
    client = await Client.connect(address)
    try:
        await client.get_schedule_handle(schedule_id).describe()
    except RPCError as error:
        return error
    return None


async def _terminate_running(address: str, temporal_schedule_id: str) -> None:
    """The triggered run may still be training when the test ends: end it, so the
    worker shuts down at once."""
    client = await Client.connect(address)
    async for execution in client.list_workflows(f'TemporalScheduledById = "{temporal_schedule_id}"'):
        if execution.status == WorkflowExecutionStatus.RUNNING:
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(execution.id).terminate("test over")


def test_schedule_fires_pauses_triggers_and_deletes(
    temporal_address: str, data_dir: Path, prefix: str, worker: Child
) -> None:
    settings = Settings(
        data_dir=data_dir,
        temporal_address=temporal_address,
        task_queue_prefix=prefix,
        reconcile_interval_s=0.5,
        temporal_rpc_timeout_s=10,
    )
    log = data_dir / "worker.log"
    started = time.monotonic()
    marks: dict[str, float] = {}
    with TestClient(create_app(settings)) as client:
        created = client.post(
            "/training-schedules", json={"name": "every-2s", "every": "2s", "run": TINY_RUN}
        )
        assert created.status_code == 201, created.text
        schedule = created.json()
        sid, temporal_id = schedule["id"], schedule["temporal_schedule_id"]
        assert created.headers["location"] == f"/training-schedules/{sid}"
        assert schedule["every"] == "2s" and schedule["overlap"] == "skip" and schedule["cron"] is None
        assert schedule["state"]["paused"] is False and schedule["state"]["next_action_times"]

        def scheduled_runs() -> list[dict]:
            return client.get(f"/training-runs?schedule_id={sid}").json()["data"]

        try:
            first = wait_for("the first fired run in the index", scheduled_runs, 60, log)[0]
            marks["first run indexed"] = time.monotonic() - started
            # The same document as a run started by POST /training-runs, plus its schedule.
            assert first["schedule_id"] == sid and first["name"] == "scheduled-tiny"
            assert first["workflow_id"].startswith(f"{temporal_id}-")
            assert first["config"] == TrainingRunCreate.model_validate(TINY_RUN).model_dump(mode="json")
            assert first["id"].startswith(f"{sid}-") and first["id"].endswith("Z")

            paused = client.post(f"/training-schedules/{sid}/pause", json={"note": "test pause"})
            assert paused.status_code == 200, paused.text
            assert paused.json()["state"]["paused"] is True and paused.json()["state"]["note"] == "test pause"

            # The worker trains the fired run under the id the index derived (overlap skip:
            # nothing else starts meanwhile, and pause keeps it so afterwards).
            done = wait_for(
                "the fired run to complete",
                lambda: (
                    (r := client.get(f"/training-runs/{first['id']}").json())["status"] == "completed" and r
                ),
                360,
                log,
            )
            marks["first run completed"] = time.monotonic() - started
            assert done["rounds_done"] == 1 and done["best_checkpoint_id"] == f"{first['id']}-r1"
            checkpoints = client.get(f"/checkpoints?run_id={first['id']}").json()["data"]
            assert [c["id"] for c in checkpoints] == [f"{first['id']}-r1"]

            time.sleep(1.0)  # the last due start before the pause, if any, becomes visible
            before = client.get(f"/training-schedules/{sid}").json()["state"]["actions"]
            time.sleep(6.0)  # three intervals with no run going: unpaused, one would start
            state = client.get(f"/training-schedules/{sid}").json()["state"]
            assert state["paused"] is True and state["actions"] == before
            runs = wait_for(
                "the index to match Temporal", lambda: len(r := scheduled_runs()) == before and r, 10, log
            )
            assert len({r["id"] for r in runs}) == before  # each fired run indexed once

            triggered = client.post(f"/training-schedules/{sid}/trigger")
            assert triggered.status_code == 202 and triggered.json()["overlap"] == "allow_all"
            runs = wait_for(
                "the triggered run", lambda: len(r := scheduled_runs()) == before + 1 and r, 30, log
            )
            marks["triggered run indexed"] = time.monotonic() - started
            newest = runs[0]
            assert newest["id"] not in {r["id"] for r in runs[1:]} and newest["schedule_id"] == sid

            listed = client.get("/training-schedules").json()
            assert listed["count"] == 1 and listed["data"][0]["id"] == sid
            assert any(a["run_id"] == newest["id"] for a in listed["data"][0]["state"]["recent_actions"])
        finally:
            deleted = client.delete(f"/training-schedules/{sid}")
            asyncio.run(_terminate_running(temporal_address, temporal_id))
        assert deleted.status_code == 204, deleted.text
        error = asyncio.run(_describe_schedule(temporal_address, temporal_id))
        assert isinstance(error, RPCError) and error.status == RPCStatusCode.NOT_FOUND
        assert client.get(f"/training-schedules/{sid}").status_code == 404
        assert client.get("/training-schedules").json()["count"] == 0
        assert len(scheduled_runs()) == before + 1  # its runs stay in the index

        nightly = client.post(
            "/training-schedules",
            json={"name": "nightly", "cron": "0 3 * * *", "jitter": "1m", "paused": True, "run": TINY_RUN},
        )
        assert nightly.status_code == 201, nightly.text
        state = nightly.json()["state"]
        assert state["paused"] is True and state["actions"] == 0
        assert all(datetime.fromisoformat(t).hour == 3 for t in state["next_action_times"])
        assert client.delete(f"/training-schedules/{nightly.json()['id']}").status_code == 204
    marks["done"] = time.monotonic() - started
    print("schedule test, seconds since the app started:", {k: round(v, 1) for k, v in marks.items()})
