"""Resident memory of an inference worker over many plans: it must stay flat.

How to run: `.venv/bin/python benchmarks/inference_memory.py [--checkpoint DIR]
[--plans 2000]`. Runs the `plan_schedule` activity as the inference worker does (the same
function, on a thread pool of the worker's size, a trained policy from the module cache
plus the baseline heuristic), each plan on a different 100-job x 16-node cluster state,
and samples this process's resident set size (VmRSS). Without `--checkpoint` a tiny
policy is trained first (see inference_latency.py). Prints one JSON line:
`{"plans", "rss_mb_after_warmup", "rss_mb_end", "rss_mb_max", "growth_pct", "samples"}`;
the target is `growth_pct` within 5 between the end of the warm-up (the first tenth of
the plans: module load, numba kernels, caches filling) and the last plan.

Results to expect: ~0-2% growth (the module LRU, the scorers and the baseline cache are
all bounded; nothing else is kept per plan).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(
    checkpoint: Path | None = typer.Option(None, help="Trained checkpoint (default: train a tiny one)."),
    plans: int = typer.Option(2000, min=20),
    threads: int = typer.Option(0, help="Concurrent plans (0: the inference worker's concurrency)."),
) -> None:
    from api_schedule_latency import cluster_request
    from inference_latency import _tiny_checkpoint

    from worker.activities.inference import plan_schedule
    from worker.contracts import PlanInput, PolicyRef
    from worker.main import INFERENCE_CONCURRENCY

    temp = None
    if checkpoint is None:
        temp = Path(tempfile.mkdtemp(prefix="rlm-", dir="/tmp"))
        checkpoint = Path(_tiny_checkpoint(temp))
    policy = PolicyRef(kind="checkpoint", name="bench", checkpoint=str(checkpoint))

    def one(i: int) -> None:
        body = cluster_request(seed=i)
        plan_schedule(PlanInput(nodes=body["nodes"], jobs=body["jobs"], policy=policy))

    warmup = max(1, plans // 10)
    samples: list[tuple[int, float]] = []
    try:
        with ThreadPoolExecutor(max_workers=threads or INFERENCE_CONCURRENCY) as pool:
            done = 0
            for start in range(0, plans, 100):
                list(pool.map(one, range(start, min(plans, start + 100))))
                done = min(plans, start + 100)
                samples.append((done, round(rss_mb(), 1)))
        after_warmup = next(rss for count, rss in samples if count >= warmup)
        end = samples[-1][1]
        print(
            json.dumps(
                {
                    "plans": plans,
                    "rss_mb_after_warmup": after_warmup,
                    "rss_mb_end": end,
                    "rss_mb_max": max(rss for _, rss in samples),
                    "growth_pct": round(100 * (end - after_warmup) / after_warmup, 2),
                    "samples": samples,
                    "checkpoint": None if temp else str(checkpoint),
                }
            )
        )
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    typer.run(main)
