"""PPO training throughput: env steps per second, sampling and learning together.

How to run: `.venv/bin/python benchmarks/train_throughput.py [--iterations 5 --nodes 16
--window 32 --workload steady]`; any PPOHyperparams field can be overridden as JSON, e.g.
`--overrides '{"num_envs_per_env_runner": 32}'`. Prints one JSON line:
`{"env_steps_per_second": ..., "other_cpu_cores": ..., ...}`, measured through
`train_round` (the production path) between the end of a warm-up iteration (Algorithm
build, numba cache load, first torch kernels) and the end of the last one.
`other_cpu_cores` is the CPU that processes outside this benchmark used meanwhile:
above ~0.2 the figure is depressed by contention.

Results to expect (2 cores, idle machine, steady, 16 nodes x 32 window, 5 iterations of
4,096 steps): defaults (2 remote env runners x 16 envs, 1 learner thread) ~3,700-3,900
env steps/s; `{"torch_threads": 2}` ~4,500 (but ~4x slower learning whenever another
process takes a core); `{"num_env_runners": 0}` (sampling in the driver) ~3,350. See
worker/rl/config.py for why the defaults are what they are.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import typer

HZ = os.sysconf("SC_CLK_TCK")


def _cpu_snapshot() -> tuple[float, float]:
    """(CPU seconds of this process tree, CPU seconds of the whole machine)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / HZ
    tree = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    values = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    busy = sum(int(v) for v in values[:3]) + sum(int(v) for v in values[5:8])
    return sum(times.get(pid, 0.0) for pid in tree), busy / HZ


def main(
    iterations: int = typer.Option(5, min=1, help="Measured iterations after the warm-up one."),
    workload: str = "steady",
    nodes: int = 16,
    window: int = 32,
    seed: int = 0,
    overrides: str = typer.Option("{}", help="JSON object of PPOHyperparams fields."),
) -> None:
    from worker.rl.config import PPOHyperparams, TrainRoundConfig
    from worker.rl.train import IterationProgress, train_round
    from worker.settings import WorkerSettings
    from worker.sim.workloads import WorkloadSpec

    ppo = replace(PPOHyperparams(seed=seed), **json.loads(overrides))
    data_dir = Path(tempfile.mkdtemp(prefix="rlb-", dir="/tmp"))
    config = TrainRoundConfig(
        workload=WorkloadSpec(workload, nodes),
        window=window,
        iterations=iterations + 1,
        ppo=ppo,
        seed=seed,
        output_dir=str(data_dir / "checkpoints"),
    )
    marks: list[tuple[float, int, float, float]] = []

    def on_iteration(progress: IterationProgress) -> None:
        marks.append((time.perf_counter(), progress.env_steps, *_cpu_snapshot()))

    try:
        train_round(config, on_iteration=on_iteration, settings=WorkerSettings(data_dir=data_dir))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    (t0, s0, mine0, busy0), (t1, s1, mine1, busy1) = marks[0], marks[-1]
    elapsed = t1 - t0
    other = ((busy1 - busy0) - (mine1 - mine0)) / elapsed
    print(
        json.dumps(
            {
                "env_steps_per_second": round((s1 - s0) / elapsed),
                "env_steps": s1 - s0,
                "elapsed_s": round(elapsed, 2),
                "other_cpu_cores": round(max(other, 0.0), 2),
                "workload": workload,
                "nodes": nodes,
                "window": window,
                "hyperparams": asdict(ppo),
            }
        )
    )


if __name__ == "__main__":
    typer.run(main)
