"""Placements: on which node a chosen job starts, among the nodes it fits now.

Each placement scores the candidate nodes of one job and takes the best; ties go to the
lowest-numbered node. Within a node the engine always takes the fastest allowed GPU
type whose devices fit, so a placement chooses GPU speed by choosing the node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from worker.sim.engine import ClusterSim
from worker.sim.env import DecisionView
from worker.sim.fragmentation import fgd_choice, shape_table

PlaceFn = Callable[[DecisionView, int, np.ndarray], int]
"""(view, window slot, candidate nodes as a bool mask with at least one True) -> node."""


@dataclass(frozen=True, slots=True)
class Placement:
    name: str
    place: PlaceFn
    needs_deadlines: bool
    description: str


@dataclass(frozen=True, slots=True)
class Leftover:
    """What each node would have free after taking the job, as shares of its capacity."""

    cpu: np.ndarray
    mem: np.ndarray
    gpu: np.ndarray
    has_gpu: np.ndarray
    has_mem: np.ndarray


def leftover(sim: ClusterSim, job: int) -> Leftover:
    cap_gpu = sim.cap_gpu.sum(axis=1)
    need_gpu = 0.0 if sim.cpu_only[job] else float(sim.gpu[job])

    def share(free: np.ndarray, cap: np.ndarray, need: float) -> np.ndarray:
        return np.where(cap > 0, (free - need) / np.maximum(cap, 1e-9), 0.0)

    return Leftover(
        cpu=share(sim.free_cpu, sim.cap_cpu, float(sim.cpu[job])),
        mem=share(sim.free_mem, sim.cap_mem, float(sim.mem[job])),
        gpu=share(sim.free_gpu.sum(axis=1), cap_gpu, need_gpu),
        has_gpu=cap_gpu > 0,
        has_mem=sim.cap_mem > 0,
    )


def _best(candidates: np.ndarray, *keys: np.ndarray) -> int:
    """The candidate with the lexicographically smallest keys (first key most significant)."""
    idx = np.flatnonzero(candidates)
    order = np.lexsort(tuple(k[idx] for k in reversed(keys)))
    return int(idx[order[0]])


def _tightness(view: DecisionView, slot: int) -> tuple[np.ndarray, np.ndarray]:
    left = leftover(view.sim, int(view.window[slot]))
    return left.gpu, left.cpu


def _first(view: DecisionView, slot: int, candidates: np.ndarray) -> int:
    return int(np.argmax(candidates))


def _fastest(view: DecisionView, slot: int, candidates: np.ndarray) -> int:
    return _best(candidates, -view.speed[slot], *_tightness(view, slot))


def _deadline(view: DecisionView, slot: int, candidates: np.ndarray) -> int:
    """The slowest GPU that still meets the deadline keeps fast GPUs for tight jobs."""
    sim, job = view.sim, int(view.window[slot])
    speed = view.speed[slot]
    finish = sim.now + sim.estimate[job] / np.maximum(speed, 1e-9)
    meets = candidates & (finish <= sim.deadline[job])
    if not meets.any():
        return _fastest(view, slot, candidates)
    return _best(meets, speed, *_tightness(view, slot))


def _bestfit(view: DecisionView, slot: int, candidates: np.ndarray) -> int:
    left = leftover(view.sim, int(view.window[slot]))
    return _best(candidates, left.cpu + left.mem + left.gpu)


def _fgd(view: DecisionView, slot: int, candidates: np.ndarray) -> int:
    """FGD: where the expected GPU fragmentation over the workload's typical job shapes
    grows least, scored and tie-broken as their scheduler does (worker/sim/fragmentation.py)."""
    sim = view.sim
    return fgd_choice(sim, int(view.window[slot]), candidates, shape_table(sim))[0]


def _allocated_shares(left: Leftover) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count of the resources a node has (cpu always; memory and GPUs if any)."""
    total = left.cpu + np.where(left.has_mem, left.mem, 0.0) + np.where(left.has_gpu, left.gpu, 0.0)
    count = 1.0 + left.has_mem + left.has_gpu
    return total, count


def _least(view: DecisionView, slot: int, candidates: np.ndarray) -> int:
    """Kubernetes LeastAllocated: the most free share left on average (spreads load)."""
    total, count = _allocated_shares(leftover(view.sim, int(view.window[slot])))
    return _best(candidates, -(total / count))


def _most(view: DecisionView, slot: int, candidates: np.ndarray) -> int:
    """Kubernetes MostAllocated: the least free share left on average (packs load)."""
    total, count = _allocated_shares(leftover(view.sim, int(view.window[slot])))
    return _best(candidates, total / count)


PLACEMENTS: dict[str, Placement] = {
    p.name: p
    for p in (
        Placement("first", _first, False, "the lowest-numbered node it fits"),
        Placement("fastest", _fastest, False, "the fastest GPU type that fits; ties to the tightest fit"),
        Placement(
            "deadline",
            _deadline,
            True,
            "the slowest GPU type that still meets the job's deadline, else the fastest",
        ),
        Placement("bestfit", _bestfit, False, "the node left with the least free cpu + memory + GPU share"),
        Placement(
            "fgd",
            _fgd,
            False,
            "fragmentation gradient descent: where the expected GPU fragmentation over the workload's "
            "typical job shapes grows least (FGD, ATC'23)",
        ),
        Placement("least", _least, False, "Kubernetes LeastAllocated: most free share left on average"),
        Placement("most", _most, False, "Kubernetes MostAllocated: least free share left on average"),
    )
}
