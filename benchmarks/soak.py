"""Soak: many plans and many training rounds through the running stack, looking for leaks
and for training hurting the plans' latency.

How to run:
    .venv/bin/python benchmarks/soak.py                          # 1,000 plans, 20 rounds
    .venv/bin/python benchmarks/soak.py --plans 300 --rounds 6   # shorter
    .venv/bin/python benchmarks/soak.py --out benchmarks/results/soak.json

It starts what `rlsched dev` starts, by the same launcher (worker/stack.py), on free
ports under a temp data dir: a Temporal dev server persisted to a SQLite file, a
training worker, one inference worker and the API (one scheduler service workflow, so
its continue-as-new every 200 plans happens several times under load). Then:

1. warm-up plans (8 clients), then `--latency-plans` plans from 8 clients while nothing
   trains: the idle p50/p99 of POST /schedule;
2. a training run of `--rounds` tiny rounds starts; while a round runs, the same plans
   again: the busy p50/p99 and their ratio to idle (target: busy p99 <= 3x idle p99);
3. the rest of the `--plans`, in batches, until the run has finished its rounds,
   sampling each process's resident memory (psutil; the training worker with its Ray
   helpers) and open file descriptors, and counting Ray's `session_*` temp folders.

Every non-200 answer counts as a failure (none expected: the API retries a plan the
service workflow refused while it continued as new). Memory is "flat" when the last
sample is within 10% of the sample taken once the run's second round was indexed
(after warm-up: Ray started, RLlib imported, the policy cache filled).

Prints one JSON object (and writes it to `--out` when given).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import psutil
import typer
from provenance import provenance

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.contracts import INFERENCE_TASK_QUEUE, scheduler_service_id  # noqa: E402
from worker.stack import running_stack  # noqa: E402

CLIENTS = 8
FLAT_WITHIN = 0.10
P99_RATIO_TARGET = 3.0
TINY_RUN = {
    "name": "soak",
    "workload": {"name": "seed-demo", "nodes": 4, "window": 8, "jobs": 40},
    "ppo": {"train_batch_size": 256, "minibatch_size": 128, "num_epochs": 1, "num_envs_per_env_runner": 4},
    "iterations_per_round": 1,
    "eval_episodes": 1,
    "seed": 11,
}


def plan_request(seed: int, nodes: int = 16, jobs: int = 40) -> dict[str, Any]:
    """A different (seeded) cluster state per request, as a real caller would send."""
    rng = random.Random(seed)
    return {
        "nodes": [
            {"id": f"n{i:02d}", "cpus": 64, "gpus": {"p5": 8} if i % 2 else {"p4": 8}} for i in range(nodes)
        ],
        "jobs": [
            {
                "id": f"j{j:03d}",
                "cpus": rng.choice([2, 4, 8]),
                "gpus": rng.choice([0, 1, 2, 4]),
                "priority": rng.randint(1, 3),
                "runtime_estimate_s": rng.randint(60, 3600),
            }
            for j in range(jobs)
        ],
    }


@dataclass
class Stack:
    url: str
    temporal_address: str
    data: Path
    pids: dict[str, int]


@contextmanager
def own_stack() -> Iterator[Stack]:
    """By the launcher `rlsched dev` uses (worker/stack.py), Temporal persisted to a file."""
    env = {"RLSCHED_SCHEDULE_SERVICE_INSTANCES": "1", "RLSCHED_SCHEDULE_TIMEOUT_S": "60"}
    with (
        tempfile.TemporaryDirectory(prefix="rls-soak-", dir="/tmp") as tmp,
        running_stack(Path(tmp), env=env, temporal_db=True, ready_timeout_s=300) as stack,
    ):
        pids = stack.pids()
        names = {"training_worker": "worker-training", "inference_worker": "worker-inference-0", "api": "api"}
        yield Stack(
            stack.api_url,
            stack.temporal_address or "",
            stack.data_dir,
            {n: pids[p] for n, p in names.items()},
        )


@dataclass
class Plans:
    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    sent: int = 0

    def percentiles(self) -> dict[str, float | None]:
        if len(self.latencies_ms) < 2:
            return {"p50_ms": None, "p99_ms": None}
        cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        return {"p50_ms": round(cuts[49], 1), "p99_ms": round(cuts[98], 1)}


async def fire(http: httpx.AsyncClient, count: int, first_seed: int, into: Plans) -> None:
    """`count` plans from CLIENTS concurrent clients."""
    seeds = iter(range(first_seed, first_seed + count))

    async def client() -> None:
        for seed in seeds:
            started = time.perf_counter()
            try:
                response = await http.post("/schedule", json=plan_request(seed))
                ok, why = response.status_code == 200, f"{response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as error:
                ok, why = False, f"{type(error).__name__}: {error}"
            into.sent += 1
            if ok:
                into.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                into.failures.append(why)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))


def resources(pids: dict[str, int], data: Path) -> dict[str, Any]:
    """RSS (MB) and open fds per process; the training worker also with its children (Ray)."""
    sample: dict[str, Any] = {"t": time.monotonic()}
    for name, pid in pids.items():
        process = psutil.Process(pid)
        sample[f"{name}_rss_mb"] = round(process.memory_info().rss / 2**20, 1)
        sample[f"{name}_fds"] = process.num_fds()
        if name == "training_worker":
            tree = [process, *process.children(recursive=True)]
            total = 0
            for p in tree:
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            sample["training_worker_tree_rss_mb"] = round(total / 2**20, 1)
            sample["training_worker_tree_processes"] = len(tree)
    sample["ray_session_dirs"] = len(list((data / "ray").glob("session_2*")))
    return sample


def growth(baseline: dict[str, Any], final: dict[str, Any], key: str) -> float:
    return round((final[key] - baseline[key]) / baseline[key], 4)


async def scheduler_service_runs(address: str) -> int:
    """Executions of the service workflow so far: 1 + how often it continued as new."""
    from worker.main import connect

    client = await connect(address=address)
    workflow_id = scheduler_service_id(INFERENCE_TASK_QUEUE)
    return len([w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")])


async def soak(stack: Stack, plans: int, rounds: int, latency_plans: int) -> dict[str, Any]:
    started = time.monotonic()
    limits = httpx.Limits(max_connections=CLIENTS * 2)
    async with httpx.AsyncClient(base_url=stack.url, timeout=120, limits=limits) as http:
        everything = Plans()
        await fire(http, 40, 0, everything)
        idle = Plans()
        await fire(http, latency_plans, 10_000, idle)

        run = (await http.post("/training-runs", json={**TINY_RUN, "max_rounds": rounds})).json()

        async def run_state() -> dict[str, Any]:
            return (await http.get(f"/training-runs/{run['id']}")).json()

        deadline = time.monotonic() + 300
        while not (await run_state()).get("live_progress"):  # a round is training
            if time.monotonic() > deadline:
                raise SystemExit(f"the training run never started a round; logs in {stack.data}")
            await asyncio.sleep(0.2)
        busy = Plans()
        await fire(http, latency_plans, 20_000, busy)
        busy_while_training = (await run_state())["status"] == "running"

        samples: list[dict[str, Any]] = [resources(stack.pids, stack.data)]
        baseline: dict[str, Any] | None = None
        seed = 30_000
        sent = lambda: everything.sent + idle.sent + busy.sent  # noqa: E731
        while True:
            state = await run_state()
            if baseline is None and state["rounds_done"] >= 2:
                baseline = resources(stack.pids, stack.data)
            if sent() < plans:
                batch = min(50, plans - sent())
                await fire(http, batch, seed, everything)
                seed += batch
            elif state["status"] not in ("running", "stopping"):
                break
            else:
                await asyncio.sleep(2)
            samples.append(resources(stack.pids, stack.data))
        final = resources(stack.pids, stack.data)
        state = await run_state()
    baseline = baseline or samples[0]
    service_runs = await scheduler_service_runs(stack.temporal_address)
    failures = everything.failures + idle.failures + busy.failures
    idle_p, busy_p = idle.percentiles(), busy.percentiles()
    memory_keys = (
        "api_rss_mb",
        "training_worker_rss_mb",
        "training_worker_tree_rss_mb",
        "inference_worker_rss_mb",
    )
    memory_growth = {key: growth(baseline, final, key) for key in memory_keys}
    ratio = round(busy_p["p99_ms"] / idle_p["p99_ms"], 2) if busy_p["p99_ms"] and idle_p["p99_ms"] else None
    return {
        "plans": sent(),
        "failed_plans": len(failures),
        "failure_examples": failures[:5],
        "training_run": {
            "status": state["status"],
            "rounds_done": state["rounds_done"],
            "rounds": sorted(r["round"] for r in state["rounds"]),
        },
        "scheduler_service_continued_as_new": service_runs - 1,
        "latency": {
            "clients": CLIENTS,
            "plans_each": latency_plans,
            "idle": idle_p,
            "while_training": {**busy_p, "run_still_training_at_end": busy_while_training},
            "p99_ratio_training_vs_idle": ratio,
            "p50_ratio_training_vs_idle": (
                round(busy_p["p50_ms"] / idle_p["p50_ms"], 2)
                if busy_p["p50_ms"] and idle_p["p50_ms"]
                else None
            ),
        },
        "memory_mb": {
            "after_warm_up": {k: baseline[k] for k in memory_keys},
            "end": {k: final[k] for k in memory_keys},
        },
        "memory_growth_after_warm_up": memory_growth,
        "open_fds": {
            name: {"after_warm_up": baseline[f"{name}_fds"], "end": final[f"{name}_fds"]}
            for name in stack.pids
        },
        "ray_session_dirs": {"after_warm_up": baseline["ray_session_dirs"], "end": final["ray_session_dirs"]},
        "training_worker_processes": {
            "after_warm_up": baseline["training_worker_tree_processes"],
            "end": final["training_worker_tree_processes"],
        },
        "samples": len(samples),
        "elapsed_s": round(time.monotonic() - started, 1),
        "targets": {
            "no_failed_plans": not failures,
            "memory_flat_within_10pct": all(abs(g) <= FLAT_WITHIN for g in memory_growth.values()),
            "no_fd_growth": all(final[f"{n}_fds"] <= baseline[f"{n}_fds"] + 5 for n in stack.pids),
            "no_ray_temp_leak": final["ray_session_dirs"] <= max(1, baseline["ray_session_dirs"]),
            "p99_training_within_3x_idle": ratio is not None and ratio <= P99_RATIO_TARGET,
        },
    }


def main(
    plans: Annotated[int, typer.Option(min=100, help="POST /schedule requests in all.")] = 1000,
    rounds: Annotated[int, typer.Option(min=3, help="Tiny training rounds.")] = 20,
    latency_plans: Annotated[
        int, typer.Option(min=16, help="Plans per latency phase (idle, training).")
    ] = 160,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
) -> None:
    with own_stack() as stack:
        result = asyncio.run(soak(stack, plans, rounds, latency_plans))
    result.update(provenance())
    result["machine"] = {"cpus": os.cpu_count(), "load_avg_1m_at_end": round(os.getloadavg()[0], 2)}
    text = json.dumps(result, indent=2)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


if __name__ == "__main__":
    typer.run(main)
