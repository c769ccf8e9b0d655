"""No database call on the event loop: the app's routes, services and reconciler run
synchronous SQLModel sessions, so every statement, commit and rollback must happen on a
worker thread (a plain `def` route, or `run_in_threadpool` around the database part of an
`async def` one). One slow query on the loop would stall every request in flight,
/healthz and Temporal's replies included.

SQLAlchemy's events record each call made on a thread that is running an event loop,
while a tour of the API (a real Temporal dev server and the worker's inference Worker in
a thread; the reconciler running every 0.2 s) exercises every route that touches the
database, on its success and its failure paths."""

from __future__ import annotations

import asyncio
import time
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, Pool, event
from sqlmodel import Session
from support.inference_thread import inference_worker_thread

import app
from app.core.config import Settings
from app.main import create_app
from app.models import Checkpoint, Cluster, Round, Run
from worker.contracts import INFERENCE_TASK_QUEUE
from worker.contracts.clusters import (
    CLUSTER_LOOP_WORKFLOW,
    ClusterConfig,
    ClusterLoopInput,
    cluster_workflow_id,
)
from worker.main import connect

CLUSTER = {
    "nodes": [{"id": "a", "cpus": 16, "gpus": {"p5": 8}}],
    "jobs": [{"id": f"j{i}", "cpus": 2, "gpus": 1, "runtime_estimate_s": 600} for i in range(4)],
    "policy": "sjf",
}
RUN = {"max_rounds": 1, "iterations_per_round": 1}
DATABASE_EVENTS = (
    (Engine, "before_cursor_execute"),
    (Engine, "commit"),
    (Engine, "rollback"),
    (Pool, "checkout"),
    (Pool, "reset"),
)


@pytest.fixture
def calls_on_the_loop() -> Iterator[list[str]]:
    """Where each database call made on an event loop's thread came from: the app's
    frames on the way to it, innermost last."""
    calls: list[str] = []
    app_dir = str(Path(app.__file__).parent)

    def record(*_: Any) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a worker thread: fine
            return
        frames = [f for f in traceback.extract_stack() if f.filename.startswith(app_dir)]
        calls.append(" <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames)))

    for target, name in DATABASE_EVENTS:
        event.listen(target, name, record)
    try:
        yield calls
    finally:
        for target, name in DATABASE_EVENTS:
            event.remove(target, name, record)


@pytest.fixture(scope="module")
def prefix(temporal_address: str) -> Iterator[str]:
    prefix = f"loop-{uuid.uuid4().hex[:6]}-"
    with inference_worker_thread(temporal_address, prefix, ready_timeout_s=30):
        yield prefix


def seed_checkpoint(engine: Engine) -> str:
    """A finished run with one round and its checkpoint, as the index records them."""
    with Session(engine) as session:
        session.add(Run(id="seeded", workflow_id="training-run-seeded", status="completed", config=RUN))
        session.flush()
        session.add(Round(run_id="seeded", round=1, checkpoint_id="seeded-r1", score=0.9))
        session.add(
            Checkpoint(
                id="seeded-r1",
                run_id="seeded",
                round=1,
                location="/nowhere/seeded-r1",
                score=0.9,
                best_heuristic="edf",
                best_heuristic_score=0.8,
                gain=0.1,
                heuristic_scores={"edf": 0.8},
            )
        )
        session.commit()
    return "seeded-r1"


def start_failing_loop(engine: Engine, address: str, prefix: str, data_dir: Path) -> str:
    """A cluster loop whose reads fail (no slurm.conf), started on Temporal and indexed as
    a registration would: its failed ticks go through the status query and the index."""
    config = ClusterConfig(
        name="loopy", endpoint=str(data_dir / "gone" / "slurm.conf"), interval_s=1, step_attempts=1
    )

    async def start() -> None:
        client = await connect(address=address)
        await client.start_workflow(
            CLUSTER_LOOP_WORKFLOW,
            ClusterLoopInput(config=config),
            id=cluster_workflow_id(config.name),
            task_queue=prefix + INFERENCE_TASK_QUEUE,
        )

    asyncio.run(start())
    with Session(engine) as session:
        session.add(
            Cluster(
                name=config.name,
                workflow_id=cluster_workflow_id(config.name),
                endpoint=config.endpoint,
                policy_class=config.policy_class,
                interval_s=config.interval_s,
                mode=config.mode,
                config=config.model_dump(mode="json"),
            )
        )
        session.commit()
    return config.name


def test_no_route_or_background_task_calls_the_database_on_the_event_loop(
    calls_on_the_loop: list[str], temporal_address: str, prefix: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        temporal_address=temporal_address,
        task_queue_prefix=prefix,  # no training worker: runs stay running, their queries time out
        schedule_timeout_s=10,
        temporal_rpc_timeout_s=0.5,
        reconcile_interval_s=0.2,
        cluster_endpoints=str(tmp_path),
    )
    statuses: list[tuple[str, int]] = []
    with TestClient(create_app(settings)) as client:

        def call(method: str, url: str, **kwargs: Any) -> Any:
            response = client.request(method, url, **kwargs)
            statuses.append((f"{method} {url}", response.status_code))
            return response

        ckpt = seed_checkpoint(client.app.state.engine)  # type: ignore[attr-defined]
        plan = call("POST", "/schedule", json=CLUSTER).json()
        call("GET", f"/schedule/{plan['id']}")
        pending = call("POST", "/schedule", json={**CLUSTER, "async": True}).json()
        call("GET", f"/schedule/{pending['id']}")
        unloadable = call("POST", "/schedule", json={**CLUSTER, "policy": ckpt})  # a recorded failure
        call("POST", "/schedule", json={**CLUSTER, "policy": "no-such-checkpoint"})
        call("GET", "/checkpoints")
        call("GET", f"/checkpoints/{ckpt}")
        call("PUT", "/policy/default", json={"policy": ckpt})
        call("PUT", "/policy/default", json={"policy": "edf"})
        searching = call("PUT", "/policy/default", json={"policy": "search:tuned"})  # measured: no worker
        call("GET", f"/policy-deployments/{searching.json()['id']}")
        call("GET", "/policy")
        run = call("POST", "/training-runs", json=RUN, headers={"Idempotency-Key": "k"}).json()
        call("POST", "/training-runs", json=RUN, headers={"Idempotency-Key": "k"})
        call("POST", "/training-runs", json={**RUN, "resume_from_checkpoint": ckpt})
        call("GET", "/training-runs?status=running")
        call("GET", f"/training-runs/{run['id']}")
        call("GET", "/training-runs/seeded")
        call("GET", f"/training-runs/{run['id']}/metrics?series=rounds")
        call("GET", "/training-runs/seeded/metrics?series=league")
        call("POST", f"/training-runs/{run['id']}/stop")
        call("POST", "/training-runs/seeded/stop")
        schedule = call("POST", "/training-schedules", json={"name": "s", "every": "1h", "run": RUN}).json()
        call("GET", "/training-schedules")
        call("GET", f"/training-schedules/{schedule['id']}")
        call("POST", f"/training-schedules/{schedule['id']}/pause")
        call("POST", f"/training-schedules/{schedule['id']}/unpause")
        call("POST", f"/training-schedules/{schedule['id']}/trigger")
        call("DELETE", f"/training-schedules/{schedule['id']}")
        missing_conf = {"name": "nowhere", "endpoint": str(tmp_path / "nowhere" / "slurm.conf")}
        unreachable = call("POST", "/clusters", json=missing_conf)  # the worker's probe answers
        cluster = start_failing_loop(client.app.state.engine, temporal_address, prefix, tmp_path)  # type: ignore[attr-defined]
        time.sleep(1.5)  # a tick or two
        call("GET", "/clusters")
        loop = call("GET", f"/clusters/{cluster}").json()
        call("GET", f"/clusters/{cluster}/decisions")
        pages = [call("GET", f"/ui{page}") for page in ("", f"/runs/{run['id']}", "/runs/seeded", "/league")]
        pages += [call("GET", f"/ui{page}") for page in ("/policies", "/plans", f"/plans/{plan['id']}")]
        pages += [call("GET", f"/ui{page}") for page in ("/clusters", f"/clusters/{cluster}")]
        stopped = call("DELETE", f"/clusters/{cluster}")
        call("DELETE", f"/clusters/{cluster}")
        call("GET", "/clusters/nope")
        call("GET", "/readyz")
        time.sleep(1.0)  # a few reconciler passes over the live run and the pending plan
    assert plan["status"] == "completed" and unloadable.status_code in (409, 422)
    assert searching.status_code == 202
    assert unreachable.status_code == 422 and stopped.status_code == 202 and loop["failed_ticks"] >= 1
    assert "workflow_id" in run and "id" in schedule and all(page.status_code == 200 for page in pages)
    # 503: a stop no training worker answers; anything else 5xx is a bug on the way
    assert not [(sent, status) for sent, status in statuses if status >= 500 and status != 503], statuses
    sites = sorted(set(calls_on_the_loop))
    assert not sites, f"{len(calls_on_the_loop)} database calls on the event loop, from:\n" + "\n".join(sites)
