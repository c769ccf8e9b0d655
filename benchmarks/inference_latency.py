"""Latency of a whole placement plan with the trained policy (module already cached).

How to run: `.venv/bin/python benchmarks/inference_latency.py [--checkpoint DIR ...]
[--tiny plain --tiny tuned] [--repeats 50] [--out FILE]`. `--tiny` trains a tiny policy
first (two PPO iterations of 512 steps, ~15 s) into a temp dir, `plain` or residual on a
heuristic: latency depends on the architecture and the teacher, not on how well the
policy is trained. Every policy is timed beside fifo in the same minutes. Prints one JSON
line `{"cases": [{"policy", "jobs", "nodes", "decisions", "p50_ms", "p99_ms",
"per_decision_us", "fifo_p50_ms", "ratio_to_fifo", "torch_p50_ms"}], "checkpoints": ...}`;
fifo's figure is the same plan with the FIFO heuristic, i.e. the
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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from provenance import provenance

CASES = ((100, 16), (1000, 64))


def _tiny_checkpoint(root: Path, prior: str | None = None) -> str:
    """Two PPO iterations of 512 steps; with `prior`, a residual policy on that heuristic
    (cloned from it first, as the residual recipe does): its teacher runs at every decision."""
    from worker.rl.config import PPOHyperparams, TrainRoundConfig
    from worker.rl.train import train_round
    from worker.settings import WorkerSettings
    from worker.sim.workloads import WorkloadSpec

    ppo = PPOHyperparams(train_batch_size=512, minibatch_size=256, num_envs_per_env_runner=8)
    if prior is not None:
        ppo = replace(ppo, prior=prior, warm_start=prior, warm_start_episodes=2)
    config = TrainRoundConfig(
        workload=WorkloadSpec("steady", 16),
        iterations=2,
        ppo=ppo,
        output_dir=str(root / f"checkpoints-{prior or 'plain'}"),
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
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(help="A trained checkpoint (repeatable); its folder names its row."),
    ] = None,
    tiny: Annotated[
        list[str] | None,
        typer.Option(
            help="Train a tiny policy first (repeatable): `plain`, or a heuristic name for a residual "
            "policy on it (e.g. `tuned`). Default without --checkpoint: plain."
        ),
    ] = None,
    repeats: int = typer.Option(50, min=2, help="Plans per case (1,000-job case: a fifth)."),
    window: int = 32,
    seed: int = 0,
    torch_threads: int = typer.Option(
        1, help="torch.set_num_threads first, as the inference worker does (0: torch's default)."
    ),
    with_torch: bool = typer.Option(True, "--torch/--no-torch", help="Also time the torch forward."),
    out: Path | None = typer.Option(None, help="Also write the JSON (with its provenance) here."),
) -> None:
    import torch

    if torch_threads > 0:
        torch.set_num_threads(torch_threads)
    from worker.rl.inference import load_module

    temp = Path(tempfile.mkdtemp(prefix="rli-", dir="/tmp"))
    try:
        policies = {f"checkpoint {c.name}": c for c in checkpoint or []}
        for kind in tiny or ([] if checkpoint else ["plain"]):
            prior = None if kind == "plain" else kind
            policies[f"tiny {kind}"] = Path(_tiny_checkpoint(temp, prior))
        for path in policies.values():
            load_module(path)  # warm the cache: requests after the first pay no load
        cases = _cases(policies, repeats, window, seed, with_torch)
        document = {"cases": cases, "checkpoints": {k: str(v) for k, v in policies.items()}}
        if out is not None:
            out.write_text(json.dumps(provenance() | document, indent=1) + "\n")
        print(json.dumps(document))
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _cases(policies: dict[str, Path], repeats: int, window: int, seed: int, with_torch: bool) -> list[dict]:
    """Each case's plans by fifo and by every policy, interleaved plan by plan, so a change
    in the machine's load reaches every row alike."""
    from worker.rl.inference import PPOPolicy, load_module
    from worker.sim.heuristics import make_heuristic
    from worker.sim.workloads import WorkloadSpec, make_scenario

    factories: dict[str, Callable[[], Any]] = {"fifo": lambda: make_heuristic("fifo")}
    for label, path in policies.items():
        factories[label] = lambda path=path: PPOPolicy(load_module(path))
        if with_torch:
            factories[f"{label} (torch)"] = lambda path=path: PPOPolicy(load_module(path), backend="torch")
    cases = []
    for jobs, nodes in CASES:
        scenario = make_scenario(WorkloadSpec("steady", nodes, jobs=jobs), seed)
        node_list, job_list = list(scenario.nodes), list(scenario.jobs)
        n = repeats if jobs <= 100 else max(2, repeats // 5)
        samples: dict[str, list[float]] = {label: [] for label in factories}
        decisions: dict[str, int] = {}
        for factory in factories.values():  # warm-up: numba compiles, caches fill
            _time_plans(factory, node_list, job_list, window, 1)
        for _ in range(n):
            for label, factory in factories.items():
                timed, decisions[label] = _time_plans(factory, node_list, job_list, window, 1)
                samples[label] += timed
        fifo_p50 = statistics.median(samples["fifo"])
        for label in policies:
            p50 = statistics.median(samples[label])
            torch_samples = samples.get(f"{label} (torch)")
            cases.append(
                {
                    "policy": label,
                    "jobs": jobs,
                    "nodes": nodes,
                    "decisions": decisions[label],
                    "p50_ms": round(p50, 2),
                    "p99_ms": round(float(np.percentile(samples[label], 99)), 2),
                    "per_decision_us": round(1000.0 * p50 / max(decisions[label], 1), 1),
                    "fifo_p50_ms": round(fifo_p50, 2),
                    "ratio_to_fifo": round(p50 / fifo_p50, 2),
                    "torch_p50_ms": round(statistics.median(torch_samples), 2) if torch_samples else None,
                    "repeats": n,
                }
            )
    return cases


if __name__ == "__main__":
    typer.run(main)
