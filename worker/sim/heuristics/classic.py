"""Two heuristics outside the order x placement grid: Tetris packing and the random floor."""

from __future__ import annotations

import numpy as np

from worker.sim.policy import DecisionView


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
