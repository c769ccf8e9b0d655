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
from worker.sim.fragmentation import ShapeTable, fragmentation_choice
from worker.sim.heuristics.placements import leftover
from worker.sim.model import Job, Node, Scenario

INFLATION = 1.3
NEVER_ENDS_S = 1e15

Placer = Callable[[ClusterSim, int, np.ndarray, np.random.Generator], int | tuple[int, int]]
"""(engine, job, candidate nodes, rng) -> node, or (node, device) to pick the device too."""


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
    """FGD's node and, for a fractional pod, FGD's device on it. Scored as their plugin
    does, `int(sigmoid(-delta) x 100)`, so changes under ~0.04 GPU tie, and ties go to
    the lowest-index node (their scheduler's lexicographic tie-break)."""
    delta, device = fragmentation_choice(sim, job, candidates, sim._shape_table)  # set by run_inflation
    score = np.where(candidates, np.floor(100.0 / (1.0 + np.exp(np.clip(delta, -50.0, 50.0)))), -1.0)
    node = int(np.argmax(score))
    return node, int(device[node])


PLACERS: dict[str, Placer] = {
    "random": _random,
    "dotprod": _dotprod,
    "gpuclustering": _gpuclustering,
    "gpupacking": _gpupacking,
    "bestfit": _bestfit,
    "fgd": _fgd,
}


def inflated_pods(
    shapes: Sequence[tuple[float, float, float, tuple[str, ...]]], capacity: float, seed: int
) -> list[tuple[float, float, float, tuple[str, ...]]]:
    """The pod list shuffled by `seed`, resampled with replacement until its GPU requests
    reach `INFLATION` x `capacity`."""
    rng = np.random.default_rng(seed)
    order = [shapes[i] for i in rng.permutation(len(shapes))]
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


def run_inflation(
    nodes: tuple[Node, ...],
    shapes: Sequence[tuple[float, float, float, tuple[str, ...]]],
    policy: str,
    seed: int,
) -> AllocationCurve:
    """Place the inflated pod list of `seed` with `policy` on `nodes`."""
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
    sim = ClusterSim(Scenario("inflation", nodes, jobs, 2 * NEVER_ENDS_S), window=1)
    sim._shape_table = ShapeTable.from_jobs(sim)  # the workload's typical pods, as FGD's
    place = PLACERS[policy]
    rng = np.random.default_rng(seed)
    points = round(INFLATION * 100)
    allocated, arrived, placed_gpu, failed, mark = [0.0] * (points + 1), 0.0, 0.0, 0, 1
    for i in range(len(jobs)):
        if i > 0:
            sim.advance(sim.scenario.horizon_s)
        if not sim.waiting:  # arrived but fits nowhere ever (the engine marked it unschedulable)
            failed += 1
        else:
            fit = sim.fit(sim.window_jobs())
            candidates = fit.fits[0]
            if candidates.any():
                choice = place(sim, i, candidates, rng)
                node, device = choice if isinstance(choice, tuple) else (choice, -1)
                sim.place(0, node, device)
                placed_gpu += pods[i][2]
            else:
                sim.discard(0)
                failed += 1
        arrived += pods[i][2]
        while mark <= points and arrived >= mark * capacity / 100:
            allocated[mark] = 100.0 * placed_gpu / capacity
            mark += 1
    for m in range(mark, points + 1):
        allocated[m] = 100.0 * placed_gpu / capacity
    return AllocationCurve(policy, allocated, failed)
