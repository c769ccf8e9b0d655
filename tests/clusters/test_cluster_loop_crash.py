"""A worker process killed in the middle of a tick's apply, against a real Slurm: the
next attempt (another worker) finishes the tick; no decision is lost and Slurm's own log
shows each job written exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import uuid

import pytest
from support.slurm_cluster import SlurmCluster
from support.stack import short_data_dir, wait_for, worker_process

from worker.contracts import INFERENCE_TASK_QUEUE
from worker.contracts.clusters import ClusterConfig, ClusterLoopInput, ClusterLoopStatus, cluster_workflow_id
from worker.main import connect
from worker.workflows.cluster_loop import ClusterLoopWorkflow

pytestmark = [pytest.mark.slurm, pytest.mark.integration, pytest.mark.faults]

JOBS = 300
"""Enough `scontrol update`s (about 5 ms each) for the kill to land mid-apply."""


def marked(slurm: SlurmCluster, tick_id: str) -> int:
    jobs = json.loads(slurm.run("squeue", "--json"))["jobs"]
    return sum(j.get("admin_comment", "").endswith(f"tick={tick_id}") for j in jobs)


def test_worker_killed_mid_apply_loses_no_decision_and_writes_none_twice(
    temporal_address: str, slurm: SlurmCluster, enforce: ClusterConfig
) -> None:
    jobs = [
        slurm.submit_deferred("--gres=gpu:p5:8", "-c", "8", "--mem=8000", "-t", "20") for _ in range(JOBS)
    ]
    config = enforce.model_copy(update={"name": f"crash-{uuid.uuid4().hex[:6]}", "interval_s": 600})
    workflow_id = cluster_workflow_id(config.name)
    tick_id = f"{workflow_id}.1"
    prefix = f"t-{uuid.uuid4().hex[:8]}-"
    env = {"RLSCHED_WORKER_QUEUE": "inference"}

    async def start() -> None:
        client = await connect(address=temporal_address)
        await client.start_workflow(
            ClusterLoopWorkflow.run,
            ClusterLoopInput(config=config),
            id=workflow_id,
            task_queue=prefix + INFERENCE_TASK_QUEUE,
        )

    async def status() -> ClusterLoopStatus:
        client = await connect(address=temporal_address)
        return await client.get_workflow_handle(workflow_id).query(ClusterLoopWorkflow.status)

    with short_data_dir("rls-crash-") as data:
        log = data / "worker.log"
        with worker_process(temporal_address, data, prefix, env) as first:
            wait_for("the first worker to serve", lambda: "serving" in log.read_text(), 120, log)
            asyncio.run(start())
            wait_for("the apply to start writing", lambda: marked(slurm, tick_id) > 0, 60, log)
            os.killpg(first.pid, signal.SIGKILL)
            written_before_kill = marked(slurm, tick_id)
        assert 0 < written_before_kill < JOBS, "the kill did not land mid-apply"
        with worker_process(temporal_address, data, prefix, env):
            record = wait_for(
                "the retried apply to finish the tick",
                lambda: (s := asyncio.run(status())).history and s.history[0],
                120,
                log,
            )
        asyncio.run(_terminate(temporal_address, workflow_id))

    assert record.error is None
    outcomes = {d.job_id: d.outcome for d in record.decisions}
    assert set(outcomes) == set(jobs)
    assert set(outcomes.values()) == {"unchanged", "applied"}
    assert list(outcomes.values()).count("unchanged") >= written_before_kill
    assert marked(slurm, tick_id) == JOBS  # no decision lost
    writes = re.findall(
        rf"setting admin_comment to \S*tick={re.escape(tick_id)} for JobId=(\d+)",
        (slurm.root / "log" / "slurmctld.log").read_text(),
    )
    assert sorted(writes, key=int) == sorted(jobs, key=int)  # each job written exactly once


async def _terminate(address: str, workflow_id: str) -> None:
    client = await connect(address=address)
    await client.get_workflow_handle(workflow_id).terminate("test over")
