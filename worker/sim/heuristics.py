"""Classic scheduling heuristics on the same engine and interface as the learned policy.

All of them are work-conserving (they never WAIT while some pair fits) and pick among the
pairs the env marks valid, so they differ only in which job goes first and where.
Ordering heuristics (fifo, sjf, edf, priority) place their chosen job first-fit: on the
lowest-numbered node it fits. `fifo` scans the window in arrival order and takes the
first job that fits anywhere (greedy backfilling), a stronger baseline than strict
head-of-line FIFO.
"""

from __future__ import annotations

import numpy as np

from worker.sim.env import DecisionView


class _OrderingHeuristic:
    """Choose a job by a key (smallest first), then the first node it fits."""

    name = ""
    needs_observation = False

    def reset(self, seed: int) -> None:
        pass

    def key(self, view: DecisionView) -> np.ndarray:
        raise NotImplementedError

    def act(self, view: DecisionView) -> int:
        fits = view.fits
        slot_ok = fits.any(axis=1)
        if not slot_ok.any():
            return view.wait_action
        key = np.where(slot_ok, self.key(view), np.inf)
        slot = int(np.argmin(key))  # argmin takes the first (oldest) slot on ties
        node = int(np.argmax(fits[slot]))
        return slot * fits.shape[1] + node


class FifoFirstFit(_OrderingHeuristic):
    name = "fifo"

    def key(self, view: DecisionView) -> np.ndarray:
        return np.zeros(len(view.window))


class ShortestJobFirst(_OrderingHeuristic):
    name = "sjf"

    def key(self, view: DecisionView) -> np.ndarray:
        return view.sim.estimate[view.window]


class EarliestDeadlineFirst(_OrderingHeuristic):
    name = "edf"

    def key(self, view: DecisionView) -> np.ndarray:
        return view.sim.deadline[view.window]


class HighestPriorityFirst(_OrderingHeuristic):
    name = "priority"

    def key(self, view: DecisionView) -> np.ndarray:
        return -view.sim.priority[view.window]


class TetrisPacking:
    """Best fit by alignment (Tetris, Grandl et al. 2014): the pair whose demand vector
    best matches the node's free vector, both normalised by the node's capacity."""

    name = "packing"
    needs_observation = False

    def reset(self, seed: int) -> None:
        pass

    def act(self, view: DecisionView) -> int:
        fits = view.fits
        if not fits.any():
            return view.wait_action
        sim, w = view.sim, view.window
        cap = np.stack([sim.cap_cpu, sim.cap_mem, sim.cap_gpu.sum(axis=1)], axis=1)
        inv = np.where(cap > 0, 1.0 / np.maximum(cap, 1e-9), 0.0)
        free = np.stack([sim.free_cpu, sim.free_mem, sim.free_gpu.sum(axis=1)], axis=1) * inv
        demand = np.stack([sim.cpu[w], sim.mem[w], sim.gpu[w]], axis=1)
        demand = np.where(np.isfinite(demand), demand, 0.0)
        score = np.einsum("kr,nr,nr->kn", demand, inv, free)
        return int(np.argmax(np.where(fits, score, -np.inf)))


class RandomValid:
    """Uniform over valid pairs: the floor every policy must clear."""

    name = "random"
    needs_observation = False

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, view: DecisionView) -> int:
        valid = np.flatnonzero(view.fits)
        if not len(valid):
            return view.wait_action
        return int(valid[self.rng.integers(len(valid))])


HEURISTICS: dict[str, type] = {
    cls.name: cls
    for cls in (
        FifoFirstFit,
        ShortestJobFirst,
        EarliestDeadlineFirst,
        HighestPriorityFirst,
        TetrisPacking,
        RandomValid,
    )
}


def make_heuristic(name: str):  # -> Policy (imported lazily by callers to avoid a cycle)
    try:
        return HEURISTICS[name]()
    except KeyError:
        raise ValueError(f"unknown heuristic {name!r}; choose one of {', '.join(HEURISTICS)}") from None
