"""Placements: on which node a chosen job starts, among the nodes it fits now.

Each placement scores the candidate nodes of one job and takes the best; ties go to the
lowest-numbered node. Within a node the engine always takes the fastest allowed GPU
type whose devices fit, so a placement chooses GPU speed by choosing the node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from worker.sim.fragmentation import Leftover, fgd_choice, leftover, shape_table
from worker.sim.policy import DecisionView

PlaceFn = Callable[[DecisionView, int, np.ndarray], int]
"""(view, window slot, candidate nodes as a bool mask with at least one True) -> node."""


@dataclass(frozen=True, slots=True)
class Placement:
    name: str
    place: PlaceFn
    needs_deadlines: bool
    description: str


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
