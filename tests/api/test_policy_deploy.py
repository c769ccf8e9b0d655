"""Deploying a policy: `PUT /policy/{class}` changes what `best` serves, by an update to
the running scheduler service workflow (no restart), and `GET /policy` shows the evidence.

Real parts: the session's Temporal dev server, the worker's real inference Worker
(worker.main.build_workers) in a thread, the app with its lifespan. Checkpoints are
tiny untrained pair-scoring modules (a module dir loads like a trained one) whose index
rows carry the evaluation figures eligibility is decided on, so no test trains."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.inference_thread import inference_worker_thread

from app.core.config import Settings
from app.main import create_app
from app.models import Checkpoint, Run
from app.services.policy import offer_round
from worker.contracts import (
    SCHEDULER_SERVICE_WORKFLOW,
    SchedulerServiceInput,
    scheduler_service_id,
)
from worker.main import connect
from worker.rl.module import PairScoringModule
from worker.sim.features import observation_space

pytestmark = pytest.mark.integration

CLUSTER = {
    "nodes": [{"id": "a", "cpus": 16, "gpus": {"p5": 8}}, {"id": "b", "cpus": 16, "gpus": {"p4": 4}}],
    "jobs": [{"id": f"j{i}", "cpus": 2, "gpus": 2, "runtime_estimate_s": 600} for i in range(6)],
}
RUN_CONFIG = {"workload": {"name": "steady", "nodes": 4, "window": 8}, "seed": 3, "eval_episodes": 4}

FALLBACK = Settings.model_fields["fallback_heuristic"].default
"""What `best` serves for a class with nothing deployed."""


@pytest.fixture
def prefix() -> str:
    """A fresh inference queue per test: its own service workflow, nothing deployed."""
    return f"dep-{uuid.uuid4().hex[:6]}-"


@pytest.fixture
def worker(temporal_address: str, prefix: str) -> Iterator[None]:
    with inference_worker_thread(temporal_address, prefix, ready_timeout_s=30):
        yield


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    module = PairScoringModule(
        observation_space=observation_space(8, 4),
        action_space=gym.spaces.Discrete(8 * 4 + 1),
        model_config={"embed_dim": 8, "hidden": 16},
    )
    path = tmp_path_factory.mktemp("ckpt") / "module"
    module.save_to_path(str(path))
    return path


def settings_for(temporal_address: str, prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        temporal_address=temporal_address,
        task_queue_prefix=prefix,
        schedule_timeout_s=30,
        reconcile_interval_s=0,
    )


def add_checkpoint(
    client: TestClient, ckpt_id: str, location: Path, gain: float, config: dict | None = None
) -> None:
    """A round's checkpoint as the index records it: the PPO value and the league's."""
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        run_id = f"run-{ckpt_id}"
        session.add(Run(id=run_id, workflow_id=f"training-{ckpt_id}", config=config or RUN_CONFIG))
        session.flush()
        session.add(
            Checkpoint(
                id=ckpt_id,
                run_id=run_id,
                round=1,
                location=str(location),
                score=0.9 + gain,
                best_heuristic="edf",
                best_heuristic_score=0.9,
                margin=gain,
                heuristic_scores={"edf": 0.9, "fifo": 0.85, "sjf+fastest": 0.88},
                window=8,
            )
        )
        session.commit()


def plan(client: TestClient, **extra: object) -> dict:
    answer = client.post("/schedule", json={**CLUSTER, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_deploy_a_heuristic_then_a_checkpoint_and_the_next_plan_uses_it(
    temporal_address: str, prefix: str, worker: None, tmp_path: Path, module_dir: Path
) -> None:
    with TestClient(create_app(settings_for(temporal_address, prefix, tmp_path))) as client:
        add_checkpoint(client, "good", module_dir, gain=0.05)
        empty = {"data": [], "count": 0, "fallback": "sjf+fastest", "search_deployments": []}
        assert client.get("/policy").json() == empty
        before = plan(client)
        assert before["policy"] == FALLBACK and "nothing deployed for class 'default'" in before["notes"][0]

        heuristic = client.put("/policy/default", json={"policy": "sjf+fastest"})
        assert heuristic.status_code == 200, heuristic.text
        assert heuristic.json()["kind"] == "heuristic" and heuristic.json()["previous"] is None
        assert plan(client)["policy"] == "sjf+fastest"

        deployed = client.put("/policy/default", json={"policy": "good"})
        assert deployed.status_code == 200, deployed.text
        body = deployed.json()
        assert body["checkpoint_id"] == "good" and body["eligible"] and not body["forced"]
        assert body["previous"]["policy"] == "sjf+fastest"
        served = plan(client)
        assert served["checkpoint_id"] == "good" and served["policy"] == "good"
        assert "margin +0.0500" in served["notes"][0]
        assert {p["job_id"] for p in served["placements"]} == {f"j{i}" for i in range(6)}
        # Classes are independent: `steady` has nothing deployed.
        other = plan(client, **{"class": "steady"})
        assert other["policy"] == FALLBACK and "class 'steady'" in other["notes"][0]
        # A workflow per request (`async`) resolves `best` from the same deployments.
        queued = client.post("/schedule", json={**CLUSTER, "async": True})
        assert queued.status_code == 202 and queued.json()["checkpoint_id"] == "good"

        (shown,) = client.get("/policy").json()["data"]
        assert shown["policy_class"] == "default" and shown["deployed_at"] and shown["source"] == "operator"
        evidence = shown["evidence"]
        assert evidence["margin"] == pytest.approx(0.05) and evidence["best_heuristic"] == "edf"
        assert evidence["league"] == {"edf": 0.9, "fifo": 0.85, "sjf+fastest": 0.88}
        assert evidence["episodes"] == 4 and evidence["seed"] == (3 + 1_000_000_007) % (2**31 - 1)
        assert evidence["workload"]["name"] == "steady"


def test_unknown_and_ineligible_checkpoints_are_409_unless_forced(
    temporal_address: str, prefix: str, worker: None, tmp_path: Path, module_dir: Path
) -> None:
    with TestClient(create_app(settings_for(temporal_address, prefix, tmp_path))) as client:
        add_checkpoint(client, "worse", module_dir, gain=-0.02)
        unknown = client.put("/policy/default", json={"policy": "no-such-ckpt"})
        assert unknown.status_code == 409 and unknown.headers["content-type"] == "application/problem+json"
        assert "no checkpoint has that id" in unknown.json()["detail"]
        typo = client.put("/policy/default", json={"policy": "edf+fastets"})
        assert typo.status_code == 409 and "unknown placement 'fastets'" in typo.json()["detail"]
        ineligible = client.put("/policy/steady", json={"policy": "worse"})
        assert ineligible.status_code == 409, ineligible.text
        assert "margin -0.0200" in ineligible.json()["detail"] and "force" in ineligible.json()["detail"]
        assert client.get("/policy").json()["count"] == 0
        assert plan(client, **{"class": "steady"})["policy"] == FALLBACK  # never served by `best`
        assert plan(client, policy="worse")["checkpoint_id"] == "worse"  # by its id it is

        forced = client.put("/policy/steady", json={"policy": "worse", "force": True})
        assert forced.status_code == 200, forced.text
        assert forced.json()["forced"] and not forced.json()["eligible"]
        served = plan(client, **{"class": "steady"})
        assert served["checkpoint_id"] == "worse" and "forced: NOT eligible" in served["notes"][0]
        assert client.put("/policy/bad class", json={"policy": "edf"}).status_code == 422


def test_deploying_under_load_loses_no_plan_across_continue_as_new(
    temporal_address: str, prefix: str, worker: None, tmp_path: Path, module_dir: Path
) -> None:
    """Eight plans in flight from four threads while the deployment lands; the service
    workflow continues as new every 3 plans, carrying the deployment over."""
    settings = settings_for(temporal_address, prefix, tmp_path)

    async def start_service() -> None:
        client = await connect(address=temporal_address)
        await client.start_workflow(
            SCHEDULER_SERVICE_WORKFLOW,
            SchedulerServiceInput(continue_as_new_every=3),
            id=scheduler_service_id(settings.inference_queue),
            task_queue=settings.inference_queue,
        )

    asyncio.run(start_service())
    with TestClient(create_app(settings)) as client:
        add_checkpoint(client, "good", module_dir, gain=0.05)

        def timed_plan(_: int) -> tuple[float, float, dict]:
            sent = time.monotonic()
            answer = client.post("/schedule", json=CLUSTER)
            return sent, time.monotonic(), answer.json() | {"status_code": answer.status_code}

        with ThreadPoolExecutor(4) as pool:
            first = [pool.submit(timed_plan, i) for i in range(8)]
            time.sleep(0.05)
            put = client.put("/policy/default", json={"policy": "good"})
            put_done = time.monotonic()
            second = [pool.submit(timed_plan, i) for i in range(8)]
            results = [f.result() for f in first + second]
        assert put.status_code == 200, put.text
        assert [r[2]["status_code"] for r in results] == [200] * 16, results
        assert all(len(r[2]["placements"]) == 6 for r in results)
        assert {r[2]["policy"] for r in results} <= {FALLBACK, "good"}
        after = [r[2] for r in results if r[0] > put_done]
        assert after and all(p["checkpoint_id"] == "good" for p in after)
        # Several continue-as-new later the deployment is still there.
        assert client.get("/policy").json()["data"][0]["policy"] == "good"
        assert plan(client)["checkpoint_id"] == "good"


def test_auto_deploy_takes_a_better_margin_on_the_same_seeds_only(
    temporal_address: str, prefix: str, worker: None, tmp_path: Path, module_dir: Path
) -> None:
    settings = settings_for(temporal_address, prefix, tmp_path)
    with TestClient(create_app(settings)) as client:
        add_checkpoint(client, "r1", module_dir, gain=0.01)
        add_checkpoint(client, "r2", module_dir, gain=0.03)
        add_checkpoint(client, "r3", module_dir, gain=0.02)
        add_checkpoint(client, "elsewhere", module_dir, gain=0.2, config={**RUN_CONFIG, "seed": 99})
        add_checkpoint(client, "loses", module_dir, gain=-0.01)

        async def offer(ckpt_id: str) -> None:
            temporal = await connect(address=temporal_address)
            with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
                ckpt = session.get(Checkpoint, ckpt_id)
                run = session.get(Run, f"run-{ckpt_id}")
                assert ckpt is not None and run is not None
                run.config = {**run.config, "deploy": "auto"}
                await offer_round(temporal, settings, session, run, ckpt)

        def deployed() -> str:
            (row,) = client.get("/policy").json()["data"]
            assert row["policy_class"] == "steady" and row["source"] == "auto"
            return row["policy"]

        asyncio.run(offer("loses"))
        assert client.get("/policy").json()["count"] == 0
        asyncio.run(offer("r1"))
        assert deployed() == "r1"
        asyncio.run(offer("r2"))
        assert deployed() == "r2"
        asyncio.run(offer("r3"))  # eligible, but a smaller margin than r2's on the same seeds
        assert deployed() == "r2"
        asyncio.run(offer("elsewhere"))  # evaluated on other seeds: not comparable
        assert deployed() == "r2"
        assert plan(client, **{"class": "steady"})["checkpoint_id"] == "r2"
