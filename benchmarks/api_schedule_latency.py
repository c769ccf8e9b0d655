"""End-to-end latency and throughput of `POST /schedule` (100 jobs, 16 nodes).

How to run:
    .venv/bin/python benchmarks/api_schedule_latency.py                # own stack, free ports
    .venv/bin/python benchmarks/api_schedule_latency.py --url http://127.0.0.1:8000
    .venv/bin/python benchmarks/api_schedule_latency.py --breakdown    # + where the time goes

Without `--url` it starts a Temporal dev server (worker/devserver.py: the same dynamic
config as `rlsched dev`), a worker (`python -m worker.main`) and the API (uvicorn, no
access log) on free ports under a temp data dir, and (unless `--no-train`) trains a
tiny policy first (one round of one PPO iteration, 16 nodes, window 32) and deploys it
(`PUT /policy/default`, forced) so that the default policy `best` is a real checkpoint,
kept loaded by the worker's policy cache after the warm-up requests. With `--no-train`
on a fresh stack, `best` is the heuristic fallback; the output says which policy
answered. `--breakdown` adds the same plan started straight on Temporal (no API: a
SchedulerWorkflow per plan, and an update to the scheduler service workflow) and
`GET /healthz` through the API, so the API's own share and Temporal's can be told
apart. `--mode workflow|service` sets the started API's RLSCHED_SCHEDULE_MODE
(default: the app's default, `service`).

Prints `{"cases": [{"concurrency", "p50_ms", "p99_ms", "requests_per_second", ...}]}`.
Targets (issue 5): p50 < 30 ms and >= 40 requests/s on 2 cores.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

ROOT = Path(__file__).resolve().parents[1]


def cluster_request(nodes: int = 16, jobs: int = 100, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    node_list = [
        {
            "id": f"node-{i:02d}",
            "cpus": 64,
            "memory_gb": 512,
            "gpus": {"p5": 8} if i % 2 == 0 else {"p4": 8},
            "status": "OK",
        }
        for i in range(nodes)
    ]
    job_list = [
        {
            "id": f"job-{j:03d}",
            "cpus": rng.choice([2, 4, 8, 16]),
            "gpus": rng.choice([0, 1, 2, 4, 8]),
            "priority": rng.randint(1, 3),
            "runtime_estimate_s": rng.randint(60, 7200),
            "deadline_s": rng.choice([None, 3600, 14_400]),
            "submit_s": rng.randint(0, 600),
        }
        for j in range(jobs)
    ]
    return {"nodes": node_list, "jobs": job_list}


@contextmanager
def own_stack(api_workers: int, mode: str | None) -> Iterator[str]:
    from worker.devserver import free_port, start_dev_server

    with tempfile.TemporaryDirectory(prefix="rlsched-bench-") as tmp:
        data = Path(tmp)
        server = start_dev_server(log_file=data / "temporal.log")
        port = free_port()
        env = {
            **os.environ,
            "RLSCHED_DATA_DIR": str(data),
            "RLSCHED_TEMPORAL_ADDRESS": server.address,
            "RLSCHED_API_HOST": "127.0.0.1",
            "RLSCHED_API_PORT": str(port),
        }
        if mode is not None:
            env["RLSCHED_SCHEDULE_MODE"] = mode
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "worker.main"],
                env=env,
                cwd=ROOT,
                stdout=open(data / "worker.log", "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            ),
            subprocess.Popen(
                [sys.executable, "-m", "app.cli", "api", "--no-access-log", "--workers", str(api_workers)],
                env=env,
                cwd=ROOT,
                stdout=open(data / "api.log", "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            ),
        ]
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, children, data)
            os.environ["_BENCH_TEMPORAL_ADDRESS"] = server.address
            yield url
        finally:
            for child in reversed(children):
                child.terminate()
                try:
                    child.wait(30)
                except subprocess.TimeoutExpired:
                    child.kill()
            server.stop()


def wait_ready(url: str, children: list[subprocess.Popen], data: Path, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise SystemExit(f"a stack process exited; logs in {data}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"stack not ready after {timeout_s:.0f}s")


def server_timing(header: str) -> dict[str, float]:
    """`resolve;dur=0.4, start;dur=3.1, ...` -> {"resolve": 0.4, "start": 3.1, ...}"""
    out: dict[str, float] = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        if name and duration:
            out[name] = float(duration)
    return out


async def measure(
    call: Callable[[], Awaitable[None]], concurrency: int, total: int, warmup: int
) -> dict[str, float]:
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    remaining = total

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "requests_per_second": round(len(latencies) / wall, 1),
    }


TINY_RUN = {
    "name": "benchmark",
    "workload": {"name": "steady", "nodes": 16, "window": 32, "jobs": 100},
    "ppo": {"train_batch_size": 256, "minibatch_size": 128, "num_epochs": 1, "num_envs_per_env_runner": 4},
    "iterations_per_round": 1,
    "max_rounds": 1,
    "eval_episodes": 1,
}


async def train_tiny_policy(http: httpx.AsyncClient, timeout_s: float = 600) -> str:
    run = (await http.post("/training-runs", json=TINY_RUN)).raise_for_status().json()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        detail = (await http.get(f"/training-runs/{run['id']}")).json()
        if detail["status"] == "completed" and detail["best_checkpoint_id"]:
            # `best` serves the deployed policy; a one-iteration policy is not eligible.
            deploy = {"policy": detail["best_checkpoint_id"], "force": True}
            (await http.put("/policy/default", json=deploy)).raise_for_status()
            return detail["best_checkpoint_id"]
        if detail["status"] in ("failed", "cancelled"):
            raise SystemExit(f"the benchmark's training run {detail['status']}: {detail['error']}")
        await asyncio.sleep(1)
    raise SystemExit("the benchmark's training run did not finish in time")


async def run_cases(
    url: str,
    policy: str,
    concurrencies: list[int],
    total: int,
    warmup: int,
    breakdown: bool,
    api_key: str | None,
    train: bool,
) -> dict[str, Any]:
    body = {**cluster_request(), "policy": policy}
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    most = max(concurrencies) * 2
    limits = httpx.Limits(max_connections=most, max_keepalive_connections=most)
    out: dict[str, Any] = {"url": url, "nodes": 16, "jobs": 100, "cases": []}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:
        if train:
            out["trained_checkpoint"] = await train_tiny_policy(http)
        first = await http.post("/schedule", json=body)
        first.raise_for_status()
        plan = first.json()
        out["policy"] = {"requested": policy, "used": plan["policy"], "notes": plan["notes"]}
        stages: list[dict[str, float]] = []

        async def schedule() -> None:
            response = await http.post("/schedule", json=body)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            stages.append(server_timing(response.headers.get("server-timing", "")))

        for concurrency in concurrencies:
            result = await measure(schedule, concurrency, total, warmup)
            measured = stages[-result["requests"] :]
            keys = sorted({k for s in measured for k in s})
            result["server_timing_median_ms"] = {
                k: round(statistics.median(s.get(k, 0.0) for s in measured), 2) for k in keys
            }
            stages.clear()
            out["cases"].append({"case": "api", **result})

        if breakdown:

            async def healthz() -> None:
                (await http.get("/healthz")).raise_for_status()

            for concurrency in concurrencies:
                result = await measure(healthz, concurrency, total, warmup)
                out["cases"].append({"case": "api_healthz_only", **result})
            address = os.environ.get("_BENCH_TEMPORAL_ADDRESS")
            if address:
                location = None
                if plan.get("checkpoint_id"):
                    location = (await http.get(f"/checkpoints/{plan['checkpoint_id']}")).json()["location"]
                out["cases"] += await temporal_direct(
                    address, plan, location, body, concurrencies, total, warmup
                )
    return out


async def temporal_direct(
    address: str,
    plan: dict[str, Any],
    location: str | None,
    body: dict[str, Any],
    concurrencies: list[int],
    total: int,
    warmup: int,
) -> list[dict[str, Any]]:
    """The same plan started straight on Temporal: the floor the API adds to."""
    from temporalio.client import Client, WithStartWorkflowOperation
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.contrib.pydantic import pydantic_data_converter

    from worker.contracts import (
        INFERENCE_TASK_QUEUE,
        PLAN_UPDATE,
        SCHEDULER_SERVICE_WORKFLOW,
        SCHEDULER_WORKFLOW,
        JobSpec,
        NodeSpec,
        PlanInput,
        PlanOutput,
        PolicyRef,
        scheduler_service_id,
    )

    client = await Client.connect(address, data_converter=pydantic_data_converter)
    if location is not None:
        policy = PolicyRef(kind="checkpoint", name=plan["policy"], checkpoint=location)
    else:
        policy = PolicyRef(kind="heuristic", name=plan["policy"])
    plan_input = PlanInput(
        nodes=[NodeSpec(**n) for n in body["nodes"]],
        jobs=[JobSpec(**j) for j in body["jobs"]],
        policy=policy,
        window=32,
    )

    async def direct() -> None:
        await client.execute_workflow(
            SCHEDULER_WORKFLOW, plan_input, id=f"bench-{uuid.uuid4().hex}", task_queue=INFERENCE_TASK_QUEUE
        )

    async def direct_update() -> None:
        operation = WithStartWorkflowOperation(
            SCHEDULER_SERVICE_WORKFLOW,
            id=scheduler_service_id(INFERENCE_TASK_QUEUE),
            task_queue=INFERENCE_TASK_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        await client.execute_update_with_start_workflow(
            PLAN_UPDATE,
            plan_input,
            start_workflow_operation=operation,
            id=f"bench-{uuid.uuid4().hex}",
            result_type=PlanOutput,
        )

    cases = []
    for name, call in (("temporal_direct", direct), ("temporal_direct_update", direct_update)):
        for concurrency in concurrencies:
            cases.append({"case": name, **await measure(call, concurrency, total, warmup)})
    return cases


def main(
    url: Annotated[str | None, typer.Option(help="A running API; default: start a stack.")] = None,
    policy: Annotated[str, typer.Option(help="best, a checkpoint id or a heuristic.")] = "best",
    concurrency: Annotated[list[int] | None, typer.Option(help="Concurrent clients (repeat).")] = None,
    requests: Annotated[int, typer.Option(min=10, help="Requests per case.")] = 300,
    warmup: Annotated[int, typer.Option(min=0)] = 20,
    api_workers: Annotated[int, typer.Option(min=1, help="uvicorn workers of the started API.")] = 1,
    breakdown: Annotated[bool, typer.Option(help="Also time Temporal alone and the API alone.")] = False,
    mode: Annotated[
        str | None,
        typer.Option(
            help="RLSCHED_SCHEDULE_MODE of the started API (workflow | service); default: the app's."
        ),
    ] = None,
    train: Annotated[
        bool | None, typer.Option(help="Train a tiny policy first; default: only on a stack it starts.")
    ] = None,
) -> None:
    concurrencies = concurrency or [1, 8]
    api_key = os.environ.get("RLSCHED_API_KEY")
    if url is not None:
        result = asyncio.run(
            run_cases(url, policy, concurrencies, requests, warmup, breakdown, api_key, bool(train))
        )
    else:
        with own_stack(api_workers, mode) as started:
            result = asyncio.run(
                run_cases(
                    started, policy, concurrencies, requests, warmup, breakdown, None, train is not False
                )
            )
        result["api_workers"] = api_workers
        result["schedule_mode"] = mode or "default"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    typer.run(main)
