"""End-to-end latency and throughput of `POST /schedule` (100 jobs, 16 nodes).

How to run:
    .venv/bin/python benchmarks/api_schedule_latency.py                # own stack, free ports
    .venv/bin/python benchmarks/api_schedule_latency.py --url http://127.0.0.1:8000
    .venv/bin/python benchmarks/api_schedule_latency.py --breakdown    # + where the time goes

Without `--url` it starts, by the launcher `rlsched dev` uses (worker/stack.py), a
Temporal dev server, a training worker, inference workers and the API (no access log)
on free ports under a temp data dir, and (unless `--no-train`) trains a
tiny policy first (one round of one PPO iteration, 16 nodes, window 32) and deploys it
(`PUT /policy/default`, forced) so that the default policy `best` is a real checkpoint,
kept loaded by the worker's policy cache after the warm-up requests. With `--no-train`
on a fresh stack, `best` is the heuristic fallback; the output says which policy
answered. `--breakdown` adds the same plan started straight on Temporal (no API: a
SchedulerWorkflow per plan, and an update to the scheduler service workflow) and
`GET /healthz` through the API, so the API's own share and Temporal's can be told
apart. `--mode workflow|service` sets the started API's RLSCHED_SCHEDULE_MODE
(default: the app's default, `service`).

By default both a trained checkpoint (`checkpoint`: the tiny policy trained first, or
`best` on a given `--url`) and the `sjf` heuristic are measured in the same run, each at
1 and 8 concurrent clients, each request with a different cluster state (seeded).

Prints `{"cases": [{"case", "policy", "concurrency", "p50_ms", "p99_ms",
"requests_per_second", ...}], "targets": {...}}`. Targets (issue 12), as ratios of the
same run: checkpoint p50 <= 1.3x sjf p50 at 1 client (also measured with one client
alternating between the two, `api_interleaved`, which is immune to load drifting between
cases); at 8 clients >= 2.5x the 1-client throughput; p99 at 8 clients <= 3x its p50.
With a stack it starts, every case also reports the CPU milliseconds per request of each
process (Temporal, each worker, the API, this client): where the time goes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import statistics
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
sys.path.insert(0, str(ROOT))

from worker.settings import default_inference_workers  # noqa: E402


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
def own_stack(
    api_workers: int, mode: str | None, inference_workers: int, service_instances: int | None
) -> Iterator[tuple[str, dict[str, int]]]:
    """The stack `rlsched dev` runs (one training worker, `inference_workers` inference
    workers, the API) on free ports, by the launcher (worker/stack.py); yields the URL
    and the pid of every process."""
    from worker.stack import running_stack

    env = {"RLSCHED_SCHEDULE_SERVICE_INSTANCES": str(service_instances or 2 * inference_workers)}
    if mode is not None:
        env["RLSCHED_SCHEDULE_MODE"] = mode
    with (
        tempfile.TemporaryDirectory(prefix="rlsched-bench-") as tmp,
        running_stack(
            Path(tmp), inference_workers=inference_workers, env=env, uvicorn_workers=api_workers
        ) as stack,
    ):
        os.environ["_BENCH_TEMPORAL_ADDRESS"] = stack.temporal_address or ""
        yield stack.api_url, stack.pids()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def policy_label(policy: str, plan: dict[str, Any]) -> str:
    """`checkpoint` for a plan made by a trained policy, else the heuristic's name."""
    return "checkpoint" if plan.get("checkpoint_id") else plan["policy"]


def summarise(cases: list[dict[str, Any]]) -> dict[str, float | None]:
    """The issue's ratios, from cases of the same run."""
    by = {(c["policy"], c["concurrency"]): c for c in cases if c["case"] == "api"}

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a is not None and b else None

    def field(policy: str, concurrency: int, name: str) -> float | None:
        case = by.get((policy, concurrency))
        return None if case is None else case[name]

    mixed = {c["policy"]: c["p50_ms"] for c in cases if c["case"] == "api_interleaved"}
    out: dict[str, float | None] = {
        "checkpoint_p50_over_sjf_p50_1_client": ratio(
            field("checkpoint", 1, "p50_ms"), field("sjf", 1, "p50_ms")
        ),
        "checkpoint_p50_over_sjf_p50_1_client_interleaved": ratio(mixed.get("checkpoint"), mixed.get("sjf")),
    }
    for policy in sorted({p for p, _ in by}):
        out[f"{policy}_throughput_8_over_1"] = ratio(
            field(policy, 8, "requests_per_second"), field(policy, 1, "requests_per_second")
        )
        out[f"{policy}_p99_over_p50_8_clients"] = ratio(
            field(policy, 8, "p99_ms"), field(policy, 8, "p50_ms")
        )
    return out


async def run_cases(
    url: str,
    policies: list[str],
    concurrencies: list[int],
    total: int,
    warmup: int,
    breakdown: bool,
    api_key: str | None,
    train: bool,
    baseline: bool = True,
    pids: dict[str, int] | None = None,
) -> dict[str, Any]:
    """`pids` (a stack this script started): CPU milliseconds per request of each
    process are added to every case, which says where the time goes."""
    pids = {**(pids or {}), "benchmark-client": os.getpid()}
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    most = max(concurrencies) * 2
    limits = httpx.Limits(max_connections=most, max_keepalive_connections=most)
    out: dict[str, Any] = {"url": url, "nodes": 16, "jobs": 100, "baseline": baseline, "cases": []}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:
        if train:
            out["trained_checkpoint"] = await train_tiny_policy(http)
        out["policies"] = []
        runs: list[tuple[str, list[dict[str, Any]]]] = []
        for policy in policies:
            requested = out.get("trained_checkpoint", "best") if policy == "checkpoint" else policy
            extra: dict[str, Any] = {"policy": requested}
            if not baseline:
                extra["baseline"] = None
            # A different cluster state per request (as a scheduler called every cycle
            # sees): no cache on any side can answer from a previous identical request.
            bodies = [{**cluster_request(seed=i), **extra} for i in range(warmup + total + 1)]
            body = bodies[0]
            first = await http.post("/schedule", json=body)
            first.raise_for_status()
            plan = first.json()
            label = policy_label(policy, plan)
            out["policies"].append({"requested": requested, "used": plan["policy"], "label": label})
            runs.append((label, bodies))
            stages: list[dict[str, float]] = []

            sent = itertools.count(1)

            async def schedule(
                bodies: list[dict[str, Any]] = bodies,
                stages: list[dict[str, float]] = stages,
                sent: Iterator[int] = sent,
            ) -> None:
                response = await http.post("/schedule", json=bodies[next(sent) % len(bodies)])
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
                stages.append(server_timing(response.headers.get("server-timing", "")))

            for concurrency in concurrencies:
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                result = await measure(schedule, concurrency, total, warmup)
                result["cpu_ms_per_request"] = {
                    name: round(1000 * (cpu_seconds(pid) - before[name]) / (result["requests"] + warmup), 2)
                    for name, pid in pids.items()
                }
                measured = stages[-result["requests"] :]
                keys = sorted({k for s in measured for k in s})
                result["server_timing_median_ms"] = {
                    k: round(statistics.median(s.get(k, 0.0) for s in measured), 2) for k in keys
                }
                stages.clear()
                out["cases"].append({"case": "api", "policy": label, **result})

            if breakdown:
                address = os.environ.get("_BENCH_TEMPORAL_ADDRESS")
                if address:
                    location = None
                    if plan.get("checkpoint_id"):
                        location = (await http.get(f"/checkpoints/{plan['checkpoint_id']}")).json()[
                            "location"
                        ]
                    for case in await temporal_direct(
                        address, plan, location, body, concurrencies, total, warmup
                    ):
                        out["cases"].append({**case, "policy": label})

        if len(runs) > 1:
            out["cases"] += await interleaved(http, runs, total, warmup)

        if breakdown:

            async def healthz() -> None:
                (await http.get("/healthz")).raise_for_status()

            for concurrency in concurrencies:
                result = await measure(healthz, concurrency, total, warmup)
                out["cases"].append({"case": "api_healthz_only", "policy": None, **result})
    out["targets"] = summarise(out["cases"])
    return out


async def interleaved(
    http: httpx.AsyncClient, runs: list[tuple[str, list[dict[str, Any]]]], total: int, warmup: int
) -> list[dict[str, Any]]:
    """One client alternating between the policies, request by request: their latencies
    under the same machine conditions (others' load on a shared machine drifts between
    cases measured one after the other)."""
    latencies: dict[str, list[float]] = {label: [] for label, _ in runs}
    for i in range(warmup + total):
        for label, bodies in runs:
            started = time.perf_counter()
            response = await http.post("/schedule", json=bodies[(i + 1) % len(bodies)])
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            if i >= warmup:
                latencies[label].append((time.perf_counter() - started) * 1000)
    cases = []
    for label, values in latencies.items():
        values.sort()
        cases.append(
            {
                "case": "api_interleaved",
                "policy": label,
                "concurrency": 1,
                "requests": len(values),
                "p50_ms": round(statistics.median(values), 2),
                "p99_ms": round(values[min(len(values) - 1, int(len(values) * 0.99))], 2),
            }
        )
    return cases


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

    from worker.codec import DATA_CONVERTER
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

    client = await Client.connect(address, data_converter=DATA_CONVERTER)
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
    policy: Annotated[
        list[str] | None,
        typer.Option(
            help="checkpoint (the trained one, or `best`), a checkpoint id or a heuristic (repeat)."
        ),
    ] = None,
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
    baseline: Annotated[
        bool, typer.Option(help="Ask for the baseline heuristic's plan too (the API's default).")
    ] = True,
    inference_workers: Annotated[
        int | None,
        typer.Option(help="Inference worker processes of the started stack; default as `rlsched dev`."),
    ] = None,
    service_instances: Annotated[
        int | None,
        typer.Option(help="RLSCHED_SCHEDULE_SERVICE_INSTANCES of the started API; default as `rlsched dev`."),
    ] = None,
) -> None:
    concurrencies = concurrency or [1, 8]
    inference_workers = inference_workers or default_inference_workers()
    policies = policy or ["checkpoint", "sjf"]
    api_key = os.environ.get("RLSCHED_API_KEY")
    if url is not None:
        result = asyncio.run(
            run_cases(
                url, policies, concurrencies, requests, warmup, breakdown, api_key, bool(train), baseline
            )
        )
    else:
        with own_stack(api_workers, mode, inference_workers, service_instances) as (started, pids):
            result = asyncio.run(
                run_cases(
                    started,
                    policies,
                    concurrencies,
                    requests,
                    warmup,
                    breakdown,
                    None,
                    train is not False,
                    baseline,
                    pids,
                )
            )
        result["api_workers"] = api_workers
        result["inference_workers"] = inference_workers
        result["service_instances"] = service_instances or 2 * inference_workers
        result["schedule_mode"] = mode or "default"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    typer.run(main)
