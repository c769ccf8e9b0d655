"""Env steps per second for random valid actions, one process.

How to run: `.venv/bin/python benchmarks/env_throughput.py [--nodes 16 --window 32]`.
Prints `{"env_steps_per_second": ..., "env_steps_per_cpu_second": ...}`; the second
divides by the process's CPU time, so it moves less when other work shares the cores.
Target (issue 2): >= 30,000 on 2 cores with 16 nodes and a 32-job window. Episode
resets (new scenario each time) are included.
"""

from __future__ import annotations

import json
import random
import time

import numpy as np
import typer

from worker.sim.env import SchedulingEnv


def main(
    nodes: int = 16,
    window: int = 32,
    workload: str = "steady",
    steps: int = 60_000,
    seed: int = 0,
) -> None:
    env = SchedulingEnv({"workload": workload, "nodes": nodes, "window": window})
    pick = random.Random(seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(2_000):  # warm-up: numba kernels load from cache, allocator settles
        obs, _, terminated, truncated, _ = env.step(env.action_space.n - 1)
        if terminated or truncated:
            obs, _ = env.reset()
    episodes = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        valid = np.flatnonzero(obs["action_mask"])
        obs, _, terminated, truncated, _ = env.step(int(valid[pick.randrange(len(valid))]))
        if terminated or truncated:
            episodes += 1
            obs, _ = env.reset()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(
        json.dumps(
            {
                "env_steps_per_second": round(steps / elapsed),
                "env_steps_per_cpu_second": round(steps / cpu),
                "nodes": nodes,
                "window": window,
                "workload": workload,
                "episodes": episodes,
            }
        )
    )


if __name__ == "__main__":
    typer.run(main)
