"""Training on an existing Ray cluster (RAY_ADDRESS), nothing mocked: a real head started
with `ray start --head` on loopback (tests/support/ray_cluster.py), a real worker process with
RAY_ADDRESS pointing at it, a real TrainingLoopWorkflow round on the session's Temporal
dev server. The cluster's own records (GCS actor and job tables) prove the env runners
ran there, on behalf of the worker's process, and the worker never started a Ray of its
own. The head is stopped by its process session, not `ray stop`, which would take every
Ray on the machine down with it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.ray_cluster import RayCluster, start_head
from support.stack import ROOT, short_data_dir, worker_process
from support.workers import TINY_PPO, queues, tiny_run

from worker.contracts import TrainingProgress
from worker.main import connect
from worker.rl.train import env_runners_for
from worker.settings import WorkerSettings

pytestmark = [pytest.mark.integration, pytest.mark.rl, pytest.mark.timeout(900)]

CLUSTER_PROBE = """
import json, ray
import ray._private.state as state
ray.init(address={address!r}, logging_level="ERROR")
print(json.dumps({{
    "nodes": [n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]],
    "jobs": [{{"id": j["JobID"], "driver_pid": j["DriverPid"]}} for j in state.jobs()],
    "actors": [{{"class": a["ActorClassName"], "job": a["JobID"]}} for a in state.actors().values()],
}}))
"""


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayCluster]:
    cluster = start_head(num_cpus=2, env={"PYTHONPATH": str(ROOT)})  # its workers import this checkout
    try:
        yield cluster
    finally:
        cluster.stop()
        assert cluster.processes() == [], "the test's Ray head left processes behind"


def cluster_records(cluster: RayCluster) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CLUSTER_PROBE.format(address=cluster.address)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **cluster.driver_env},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_env_runners_default_to_the_cluster_when_attached() -> None:
    embedded, attached = WorkerSettings(ray_address=None), WorkerSettings(ray_address="10.0.0.1:6379")
    assert env_runners_for(0, embedded, cluster_cpus=2) == 0
    assert env_runners_for(0, attached, cluster_cpus=8) == 8
    assert env_runners_for(3, attached, cluster_cpus=8) == 3
    assert env_runners_for(0, WorkerSettings(ray_address="x:1", env_runners=1), cluster_cpus=8) == 1


def test_a_round_trains_on_the_cluster_ray_address_names(temporal_address: str, ray_head: RayCluster) -> None:
    prefix = f"ray-{uuid.uuid4().hex[:6]}-"
    # PYTHONPATH: the cluster's env-runner actors import worker.* from this checkout.
    env = {**ray_head.driver_env, "PYTHONPATH": str(ROOT), "RLSCHED_WORKER_QUEUE": "all"}
    with (
        short_data_dir("rls-rc-") as data_dir,
        worker_process(temporal_address, data_dir, prefix, env) as worker,
    ):
        try:
            progress = asyncio.run(_train_one_round(temporal_address, prefix))
            assert progress.rounds_done == 1 and progress.status == "completed", progress
            assert Path(progress.rounds[0].checkpoint).is_dir()

            records = cluster_records(ray_head)
            (driver,) = [j for j in records["jobs"] if j["driver_pid"] == worker.pid]
            runners = [a for a in records["actors"] if "EnvRunner" in a["class"] and a["job"] == driver["id"]]
            assert len(runners) == 2, records  # one per cluster CPU, the worker's default when attached
            assert len(records["nodes"]) == 1
            assert not (data_dir / "ray").exists(), "the worker started an embedded Ray instead of attaching"
        except BaseException:
            print((data_dir / "worker.log").read_text(errors="replace")[-4000:])
            raise


async def _train_one_round(temporal_address: str, prefix: str) -> TrainingProgress:
    client = await connect(address=temporal_address)
    training, _ = queues(prefix)
    config = tiny_run(f"ray-{uuid.uuid4().hex[:6]}", max_rounds=1, iterations_per_round=1, ppo=TINY_PPO)
    return await client.execute_workflow(
        "TrainingLoopWorkflow",
        config,
        id=f"training-run-{config.run_id}",
        task_queue=training,
        result_type=TrainingProgress,
        execution_timeout=timedelta(minutes=12),
    )
