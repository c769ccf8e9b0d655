"""Latency of a whole placement plan with the trained policy (module already cached).

How to run: `.venv/bin/python benchmarks/inference_latency.py [--checkpoint DIR]
[--repeats 50]`. Without `--checkpoint` a tiny policy is trained first (two PPO
iterations of 512 steps, ~15 s) into a temp dir: latency does not depend on how well the
policy is trained. Prints one JSON line `{"cases": [{"jobs", "nodes", "decisions",
"p50_ms", "p99_ms", "per_decision_us", "fifo_p50_ms", "ratio_to_fifo", "torch_p50_ms"}],
"checkpoint": ...}`; fifo's figure is the same plan with the FIFO heuristic, i.e. the
simulator's share of the time, and `ratio_to_fifo` the target (<= 2.0). `p50_ms` is the
default numba forward (worker.rl.fast_forward); `torch_p50_ms` the same plan through the
module's traced torch forward (`--no-torch` skips it).

Results to expect (2 cores, shared): 100 jobs on 16 nodes ~1.2-1.3x fifo's plan (torch:
~5x), 1,000 jobs on 64 nodes ~1.3-1.5x (torch: ~4x). The rest of the plan is the
simulator and the observation it builds for the policy. Torch runs on one thread, as in
the inference worker: with two, on a machine where another process holds a core, every
batch-1 forward waits on OpenMP and a 100-job plan takes seconds.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import typer

CASES = ((100, 16), (1000, 64))


def _tiny_checkpoint(root: Path) -> str:
    from worker.rl.config import PPOHyperparams, TrainRoundConfig
    from worker.rl.train import train_round
    from worker.settings import WorkerSettings
    from worker.sim.workloads import WorkloadSpec

    config = TrainRoundConfig(
        workload=WorkloadSpec("steady", 16),
        iterations=2,
        ppo=PPOHyperparams(train_batch_size=512, minibatch_size=256, num_envs_per_env_runner=8),
        output_dir=str(root / "checkpoints"),
    )
    return train_round(config, settings=WorkerSettings(data_dir=root)).checkpoint


def _time_plans(policy_factory, nodes, jobs, window: int, repeats: int) -> tuple[list[float], int]:  # type: ignore[no-untyped-def]
    from worker.sim.plan import plan_schedule

    samples = []
    decisions = 0
    for _ in range(repeats):
        policy = policy_factory()
        start = time.perf_counter()
        plan = plan_schedule(policy, nodes, jobs, window)
        samples.append((time.perf_counter() - start) * 1000.0)
        decisions = plan.decisions
    return samples, decisions


def main(
    checkpoint: Path | None = typer.Option(None, help="Trained checkpoint (default: train a tiny one)."),
    repeats: int = typer.Option(50, min=2, help="Plans per case (1,000-job case: a fifth)."),
    window: int = 32,
    seed: int = 0,
    torch_threads: int = typer.Option(
        1, help="torch.set_num_threads first, as the inference worker does (0: torch's default)."
    ),
    with_torch: bool = typer.Option(True, "--torch/--no-torch", help="Also time the torch forward."),
) -> None:
    import torch

    if torch_threads > 0:
        torch.set_num_threads(torch_threads)
    from worker.rl.inference import PPOPolicy, load_module
    from worker.sim.heuristics import make_heuristic
    from worker.sim.workloads import WorkloadSpec, make_scenario

    temp = None
    if checkpoint is None:
        temp = Path(tempfile.mkdtemp(prefix="rli-", dir="/tmp"))
        checkpoint = Path(_tiny_checkpoint(temp))
    try:
        load_module(checkpoint)  # warm the cache: requests after the first pay no load
        cases = []
        for jobs, nodes in CASES:
            scenario = make_scenario(WorkloadSpec("steady", nodes, jobs=jobs), seed)
            node_list, job_list = list(scenario.nodes), list(scenario.jobs)
            n = repeats if jobs <= 100 else max(2, repeats // 5)
            _time_plans(lambda: PPOPolicy(load_module(checkpoint)), node_list, job_list[:jobs], window, 1)
            ppo, decisions = _time_plans(
                lambda: PPOPolicy(load_module(checkpoint)), node_list, job_list, window, n
            )
            fifo, _ = _time_plans(lambda: make_heuristic("fifo"), node_list, job_list, window, n)
            torch_p50 = None
            if with_torch:

                def torch_policy() -> PPOPolicy:
                    return PPOPolicy(load_module(checkpoint), backend="torch")

                slow, _ = _time_plans(torch_policy, node_list, job_list, window, n)
                torch_p50 = round(statistics.median(slow), 2)
            p50 = statistics.median(ppo)
            fifo_p50 = statistics.median(fifo)
            cases.append(
                {
                    "jobs": jobs,
                    "nodes": nodes,
                    "decisions": decisions,
                    "p50_ms": round(p50, 2),
                    "p99_ms": round(float(np.percentile(ppo, 99)), 2),
                    "per_decision_us": round(1000.0 * p50 / max(decisions, 1), 1),
                    "fifo_p50_ms": round(fifo_p50, 2),
                    "ratio_to_fifo": round(p50 / fifo_p50, 2),
                    "torch_p50_ms": torch_p50,
                    "repeats": n,
                }
            )
        print(json.dumps({"cases": cases, "checkpoint": None if temp else str(checkpoint)}))
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    typer.run(main)
