"""FGD's inflation experiment on our engine: pods arrive one by one and never leave.

Weng et al. (ATC'23) measure placement alone: the whole openb cluster, the pod list
shuffled by a seed and resampled with replacement until its GPU requests reach 1.3x the
cluster's GPUs, each pod placed at once where it fits or failed, and the share of GPU
capacity allocated after each 1% of capacity has arrived. Running it on `ClusterSim`
(devices, fits, device choice) is what validates our GPU device model against theirs.

Placers (theirs by name, ours by rule):
- `random`: a uniformly random node that fits;
- `dotprod`: the largest dot product of the pod's demand and the node's free resources,
  each over the node's capacity (cpu, memory, GPU: Tetris's alignment);
- `gpuclustering`: a node already running pods with the same GPU request, else pack;
- `gpupacking`: the node left with the least free GPU share (then cpu);
- `bestfit`: the node left with the least free cpu + memory + GPU share;
- `fgd`: the least growth of expected fragmentation (worker/sim/fragmentation.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from worker.sim.engine import RUNNING, ClusterSim
from worker.sim.fragmentation import fgd_choice, leftover, shape_table
from worker.sim.model import Job, Node, Scenario

INFLATION = 1.3
NEVER_ENDS_S = 1e15

Placer = Callable[[ClusterSim, int, np.ndarray, np.random.Generator], int | tuple[int, int]]
"""(engine, job, candidate nodes, rng) -> node, or (node, device) to pick the device too."""


Pods = Sequence[tuple[float, float, float, tuple[str, ...]]]
"""(cpus, memory GB, GPUs, allowed GPU types) per pod, in arrival order."""


def _lexmin(candidates: np.ndarray, *keys: np.ndarray) -> int:
    idx = np.flatnonzero(candidates)
    return int(idx[np.lexsort(tuple(k[idx] for k in reversed(keys)))[0]])


def _random(sim: ClusterSim, job: int, candidates: np.ndarray, rng: np.random.Generator) -> int:
    idx = np.flatnonzero(candidates)
    return int(idx[rng.integers(len(idx))])


def _dotprod(sim: ClusterSim, job: int, candidates: np.ndarray, rng: np.random.Generator) -> int:
    cap = np.stack([sim.cap_cpu, sim.cap_mem, sim.cap_gpu.sum(axis=1)], axis=1)
    inv = np.where(cap > 0, 1.0 / np.maximum(cap, 1e-9), 0.0)
    free = np.stack([sim.free_cpu, sim.free_mem, sim.free_gpu.sum(axis=1)], axis=1) * inv
    gpus = 0.0 if sim.cpu_only[job] else float(sim.gpu[job])
    demand = np.array([sim.cpu[job], sim.mem[job], gpus]) * inv
    return _lexmin(candidates, -(demand * free).sum(axis=1))


def _gpupacking(sim: ClusterSim, job: int, candidates: np.ndarray, rng: np.random.Generator) -> int:
    left = leftover(sim, job)
    return _lexmin(candidates, np.where(left.has_gpu, left.gpu, np.inf), left.cpu)


def _gpuclustering(sim: ClusterSim, job: int, candidates: np.ndarray, rng: np.random.Generator) -> int:
    same = np.zeros(len(sim.free_cpu))
    running = np.flatnonzero(sim.state == RUNNING)
    if len(running):
        alike = running[np.isclose(sim.gpu[running], sim.gpu[job])]
        np.add.at(same, sim.node_of[alike], 1.0)
    left = leftover(sim, job)
    return _lexmin(candidates, -(same > 0).astype(float), np.where(left.has_gpu, left.gpu, np.inf), left.cpu)


def _bestfit(sim: ClusterSim, job: int, candidates: np.ndarray, rng: np.random.Generator) -> int:
    left = leftover(sim, job)
    return _lexmin(candidates, left.cpu + left.mem + left.gpu)


def _fgd(sim: ClusterSim, job: int, candidates: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    return fgd_choice(sim, job, candidates, shape_table(sim))


PLACERS: dict[str, Placer] = {
    "random": _random,
    "dotprod": _dotprod,
    "gpuclustering": _gpuclustering,
    "gpupacking": _gpupacking,
    "bestfit": _bestfit,
    "fgd": _fgd,
}


def inflated_pods(
    shapes: Pods, capacity: float, seed: int
) -> list[tuple[float, float, float, tuple[str, ...]]]:
    """The pod list shuffled by `seed`, resampled with replacement until its GPU requests
    reach `INFLATION` x `capacity`; cut there when the list alone asks for more (a slice
    of the cluster, as training draws, or multigpu50, which asks for 1.8x the whole
    cluster). Pods past that point would not change the curve, only FGD's typical shapes."""
    rng = np.random.default_rng(seed)
    order = [shapes[i] for i in rng.permutation(len(shapes))]
    reached = np.cumsum([s[2] for s in order]) >= INFLATION * capacity
    if reached.any():
        return order[: int(np.argmax(reached)) + 1]
    total = sum(s[2] for s in order)
    while total < INFLATION * capacity:
        extra = shapes[int(rng.integers(len(shapes)))]
        order.append(extra)
        total += extra[2]
    return order


@dataclass(frozen=True, slots=True)
class AllocationCurve:
    policy: str
    allocated: list[float]
    """GPU allocation (% of capacity) after each whole percent of capacity has arrived,
    0 to 130."""
    failed: int

    def at(self, arrived_percent: int) -> float:
        return self.allocated[arrived_percent]


def inflation_scenario(nodes: tuple[Node, ...], shapes: Pods, seed: int, name: str = "inflation") -> Scenario:
    """The inflated pod list of `seed` arriving one a second on `nodes`, never leaving;
    a pod that fits nowhere on arrival fails (`placement_only`)."""
    capacity = float(sum(sum(n.gpus.values()) for n in nodes))
    pods = inflated_pods(shapes, capacity, seed)
    jobs = tuple(
        Job(
            f"pod-{i}",
            cpus=c,
            gpus=g,
            priority=1,
            submit_s=float(i),
            runtime_estimate_s=NEVER_ENDS_S,
            runtime_s=NEVER_ENDS_S,
            deadline_s=np.inf,
            memory_gb=m,
            gpu_types=types,
        )
        for i, (c, m, g, types) in enumerate(pods)
    )
    # The last pod arrives at len - 1; nothing ends before NEVER_ENDS_S.
    return Scenario(name, nodes, jobs, float(len(jobs)), placement_only=True)


def allocation_curve(sim: ClusterSim, policy: str) -> AllocationCurve:
    """The curve of a finished inflation episode: jobs never leave, so the allocation once
    x% of capacity has arrived is the GPUs of the started pods among those arrived."""
    capacity = float(sim.cap_gpu.sum())
    gpus = np.array([j.gpus for j in sim.scenario.jobs])
    started = ~np.isnan(sim.start)
    arrived = np.cumsum(gpus)
    placed = np.cumsum(np.where(started, gpus, 0.0))
    points = round(INFLATION * 100)
    allocated = []
    for mark in range(points + 1):
        # The first pod whose arrival brings the arrived GPUs to mark% (the last if never).
        i = min(int(np.searchsorted(arrived, mark * capacity / 100)), len(gpus) - 1)
        allocated.append(0.0 if mark == 0 else 100.0 * float(placed[i]) / capacity)
    return AllocationCurve(policy, allocated, int((~started).sum()))


def run_inflation(nodes: tuple[Node, ...], shapes: Pods, policy: str, seed: int) -> AllocationCurve:
    """Place the inflated pod list of `seed` with `policy` on `nodes`."""
    scenario = inflation_scenario(nodes, shapes, seed)
    sim = ClusterSim(scenario, window=1)
    place = PLACERS[policy]
    rng = np.random.default_rng(seed)
    for i in range(len(scenario.jobs)):
        if i > 0:
            sim.advance(scenario.horizon_s)
        if not sim.waiting:  # arrived but fits nowhere ever (the engine marked it unschedulable)
            continue
        candidates = sim.fit(sim.window_jobs()).fits[0]
        if candidates.any():
            choice = place(sim, i, candidates, rng)
            node, device = choice if isinstance(choice, tuple) else (choice, -1)
            sim.place(0, node, device)
        else:
            sim.discard(0)
    return allocation_curve(sim, policy)
