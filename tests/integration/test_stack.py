"""The whole stack, nothing mocked: a real Temporal dev server (session fixture), a real
worker process (`python -m worker.main`, its own task-queue prefix) and the real app
(TestClient with lifespan: migrations, reconciler). A tiny run trains, its rounds and
checkpoints appear in the index by themselves, plans come from the new checkpoint and
from a heuristic, the run is stopped, and a restarted app finds everything still there.
All of it twice: with the app's index on SQLite and on a real PostgreSQL server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.db_backends import BACKENDS, backend_url
from support.stack import short_data_dir, wait_for, worker_process

from app.core.config import Settings
from app.main import create_app
from worker.stack import Child

pytestmark = [pytest.mark.integration, pytest.mark.rl, pytest.mark.timeout(600)]

TINY_RUN = {
    "name": "integration",
    "workload": {"name": "seed-demo", "nodes": 4, "window": 8, "jobs": 40},
    "ppo": {"train_batch_size": 256, "minibatch_size": 128, "num_epochs": 1, "num_envs_per_env_runner": 4},
    "iterations_per_round": 1,
    "max_rounds": 3,
    "eval_episodes": 1,
    "seed": 7,
    "deploy": "auto",
}
CLUSTER = {
    "nodes": [
        {"id": "a", "cpus": 32, "gpus": {"p5": 8}},
        {"id": "b", "cpus": 32, "gpus": {"p4": 8}},
        {"id": "down", "cpus": 32, "gpus": {"p5": 8}, "status": "DOWN"},
    ],
    "jobs": [
        *(
            {"id": f"j{i}", "cpus": 4, "gpus": 2, "priority": 1 + i % 3, "runtime_estimate_s": 600}
            for i in range(10)
        ),
        {"id": "huge", "cpus": 4, "gpus": 16, "runtime_estimate_s": 60},
    ],
}


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The whole stack once on SQLite and once on PostgreSQL (the app's index)."""
    return request.param


@pytest.fixture(scope="module")
def data_dir(backend: str) -> Iterator[Path]:
    with short_data_dir(f"rls-api-{backend[:2]}-") as path:
        yield path


@pytest.fixture(scope="module")
def database_url(request: pytest.FixtureRequest, backend: str, data_dir: Path) -> str:
    return backend_url(request, backend, data_dir)


@pytest.fixture(scope="module")
def prefix(backend: str) -> str:
    """Per backend: each run of the stack has its own queues and scheduler service."""
    return f"api-{backend[:2]}-{uuid.uuid4().hex[:6]}-"


@pytest.fixture(scope="module")
def worker(temporal_address: str, data_dir: Path, prefix: str) -> Iterator[Child]:
    with worker_process(temporal_address, data_dir, prefix) as process:
        yield process


def app_settings(
    temporal_address: str, data_dir: Path, prefix: str, database_url: str | None = None
) -> Settings:
    """The stack's app settings; no database_url means the SQLite file under data_dir."""
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        temporal_address=temporal_address,
        task_queue_prefix=prefix,
        reconcile_interval_s=0.5,
        schedule_timeout_s=60,
        temporal_rpc_timeout_s=10,
    )


def test_train_schedule_stop_and_restart(
    temporal_address: str, data_dir: Path, prefix: str, database_url: str, worker: Child
) -> None:
    settings = app_settings(temporal_address, data_dir, prefix, database_url)
    log = data_dir / "worker.log"
    with TestClient(create_app(settings)) as client:
        wait_for("readiness", lambda: client.get("/readyz").status_code == 200, 180, log)

        heuristic = client.post("/schedule", json={**CLUSTER, "policy": "sjf"})
        assert heuristic.status_code == 200, heuristic.text
        plan = heuristic.json()
        assert plan["policy"] == "sjf" and plan["status"] == "completed"
        assert {p["job_id"] for p in plan["placements"]} == {f"j{i}" for i in range(10)}
        assert all(p["node_id"] != "down" for p in plan["placements"])
        assert [u["job_id"] for u in plan["unplaced"]] == ["huge"] and "16" in plan["unplaced"][0]["reason"]
        assert plan["baseline"]["policy"] == "edf" and plan["metrics"]["jobs_finished"] == 10

        fallback = client.post("/schedule", json=CLUSTER).json()
        assert (
            fallback["policy"] == settings.fallback_heuristic
            and "nothing deployed for class 'default'" in fallback["notes"][0]
        )

        accepted = client.post("/schedule", json={**CLUSTER, "policy": "fifo", "async": True})
        assert (
            accepted.status_code == 202
            and accepted.headers["location"] == f"/schedule/{accepted.json()['id']}"
        )
        async_id = accepted.json()["id"]
        wait_for(
            "the async plan",
            lambda: client.get(f"/schedule/{async_id}").json()["status"] == "completed",
            60,
            log,
        )

        created = client.post("/training-runs", json=TINY_RUN, headers={"Idempotency-Key": "integration-1"})
        assert created.status_code == 201, created.text
        run = created.json()
        assert run["status"] == "running" and run["workflow_id"] == f"training-run-{run['id']}"
        retried = client.post("/training-runs", json=TINY_RUN, headers={"Idempotency-Key": "integration-1"})
        assert retried.json()["id"] == run["id"] and retried.headers["idempotent-replayed"] == "true"
        assert client.get("/training-runs").json()["count"] == 1

        # The reconciler records the first round without anyone reading the run.
        first = wait_for(
            "the first checkpoint",
            lambda: client.get(f"/checkpoints?run_id={run['id']}").json()["data"],
            420,
            log,
        )
        ckpt = first[0]
        assert ckpt["run_id"] == run["id"] and ckpt["round"] == 1 and ckpt["location"]
        assert (
            ckpt["metrics"]["policy"]
            and ckpt["heuristics"]
            and ckpt["best_heuristic"] in ckpt["heuristic_scores"]
        )

        before = client.get(f"/training-runs/{run['id']}").json()
        under_way = before["current_round"] or before["rounds_done"] + 1
        stopped = client.post(f"/training-runs/{run['id']}/stop", json={"reason": "integration test"})
        if stopped.status_code == 202:
            assert stopped.json()["status"] == "stopping"
            again = client.post(f"/training-runs/{run['id']}/stop")
            assert again.status_code == 409, again.text
        else:  # all three rounds finished before the stop arrived
            assert stopped.status_code == 409, stopped.text

        with_checkpoint = client.post("/schedule", json={**CLUSTER, "policy": ckpt["id"]})
        assert with_checkpoint.status_code == 200, with_checkpoint.text
        assert with_checkpoint.json()["checkpoint_id"] == ckpt["id"]
        assert with_checkpoint.json()["metrics"]["jobs_finished"] == 10
        fallback = client.post("/schedule", json=CLUSTER).json()
        assert fallback["checkpoint_id"] is None and "nothing deployed" in fallback["notes"][0]
        deployed = client.put("/policy/default", json={"policy": ckpt["id"], "force": not ckpt["eligible"]})
        assert deployed.status_code == 200, deployed.text
        best = client.post("/schedule", json=CLUSTER).json()
        assert best["checkpoint_id"] == ckpt["id"] and "'best' for class 'default'" in best["notes"][0]

        done = wait_for(
            "the run to end",
            lambda: (d := client.get(f"/training-runs/{run['id']}").json())["status"] == "completed" and d,
            420,
            log,
        )
        assert done["rounds_done"] == len(done["rounds"]) >= 1
        assert done["best_checkpoint_id"] and done["latest_checkpoint_id"]
        if stopped.status_code == 202:
            # the round under way finishes, no later one starts; a stop during the last
            # round therefore still ends with every round done
            assert done["stop_reason"] == "integration test"
            assert done["rounds_done"] <= under_way
        # deploy: auto offered each round as it was indexed: the first eligible round with
        # the highest margin (all rounds share the run's evaluation seeds) is deployed.
        expected = None
        for round_ in done["rounds"]:
            if round_["eligible"] and (expected is None or round_["margin"] > expected["margin"]):
                expected = round_

        def auto_deployed() -> dict | None:
            policies = {p["policy_class"]: p for p in client.get("/policy").json()["data"]}
            return policies.get("seed-demo")

        if expected is None:
            assert auto_deployed() is None
        else:  # the reconciler may still be offering the last round it indexed
            auto = wait_for(
                "the auto deployment",
                lambda: (a := auto_deployed()) and a["policy"] == expected["checkpoint_id"] and a,
                30,
                log,
            )
            assert auto["source"] == "auto" and auto["eligible"]
        late_stop = client.post(f"/training-runs/{run['id']}/stop")
        assert late_stop.status_code == 409 and "already ended" in late_stop.json()["detail"]
        checkpoints = client.get(f"/checkpoints?run_id={run['id']}").json()
        metrics = client.get("/metrics").text
        assert 'rlsched_schedule_plans_total{outcome="completed",policy_kind="checkpoint"}' in metrics

    # A new app process on the same database: everything is still there.
    with TestClient(create_app(settings)) as restarted:
        again = restarted.get(f"/training-runs/{run['id']}").json()
        assert again["status"] == "completed" and again["rounds"] == done["rounds"]
        assert restarted.get(f"/checkpoints?run_id={run['id']}").json() == checkpoints
        assert restarted.get(f"/schedule/{async_id}").json()["status"] == "completed"
        assert restarted.get(f"/schedule/{plan['id']}").json()["placements"] == plan["placements"]
