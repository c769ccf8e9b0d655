"""The worker's Prometheus endpoints, as `rlsched worker` starts them: our own metrics
(a plan's latency, counted after a real plan on a real inference worker) and the
Temporal SDK's runtime telemetry on the next port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import urllib.request
import uuid

import pytest
from support.workers import fresh_prefix, queues
from temporalio.worker import Worker
from test_scheduler_workflow import cluster_request

from worker.contracts import PolicyRef
from worker.main import build_workers, connect, start_metrics
from worker.settings import WorkerSettings
from worker.workflows.scheduler import SchedulerWorkflow

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def plan_count(text: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("rlsched_worker_plan_seconds_count") and 'policy_kind="heuristic"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_endpoints_serve_our_counters_and_the_sdks(temporal_address: str, data_dir: object) -> None:
    ours = free_port()
    settings = WorkerSettings(
        worker_metrics_port=ours, worker_sdk_metrics_port=free_port(), worker_metrics_host="127.0.0.1"
    )

    async def body() -> None:
        runtime = start_metrics(settings)
        assert runtime is not None
        before = plan_count(scrape(ours))
        prefix = fresh_prefix()
        client = await connect(address=temporal_address, runtime=runtime)
        async with contextlib.AsyncExitStack() as stack:
            workers: list[Worker] = build_workers(client, "inference", prefix)
            for worker in workers:
                await stack.enter_async_context(worker)
            await client.execute_workflow(
                SchedulerWorkflow.run,
                cluster_request(PolicyRef(kind="heuristic", name="sjf"), jobs=20, nodes=4),
                id=f"schedule-{uuid.uuid4()}",
                task_queue=queues(prefix)[1],
            )
            text = await asyncio.to_thread(scrape, ours)
            assert plan_count(text) == before + 1
            assert (
                'rlsched_worker_plan_seconds_bucket{le="60.0",outcome="completed",policy_kind="heuristic"}'
                in text
            )
            assert "rlsched_worker_training_iterations_total" in text
            sdk = await asyncio.to_thread(scrape, settings.sdk_metrics_port)  # type: ignore[arg-type]
            assert "temporal_workflow_completed_total" in sdk or "temporal_request_total" in sdk, sdk[:2000]

    asyncio.run(body())
