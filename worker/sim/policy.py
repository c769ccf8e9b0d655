"""The one interface every scheduling policy implements, learned or heuristic, and what
it sees at a decision. Depends only on the engine, so heuristics and the env both build
on it without depending on each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from worker.sim.engine import ClusterSim


@dataclass(frozen=True, slots=True)
class DecisionView:
    """What any policy (heuristic or learned) sees at a decision: the observation plus
    the raw engine state for heuristics that reason about seconds and resources."""

    obs: dict[str, np.ndarray] | None
    """None when the env runs with `observe=False` (policies that don't need features)."""
    sim: ClusterSim
    window: np.ndarray
    fits: np.ndarray
    speed: np.ndarray

    @property
    def wait_action(self) -> int:
        return self.fits.size


@runtime_checkable
class Policy(Protocol):
    name: str
    needs_observation: bool
    """False lets the env skip building features (heuristics read the engine directly).
    A policy may also carry `env_options`, what it was trained with: env config (e.g.
    `backfilling`) and a learned policy's teacher `prior`, which worker.sim.teacher's
    `make_env` adds as a wrapper. A policy that can rank its actions (a learned policy,
    by logit) may expose `ranked_actions(view) -> np.ndarray`: valid (job, node) actions
    best first, which a search over it compares after its choice."""

    def reset(self, seed: int) -> None:
        """Called at the start of each episode; stochastic policies reseed here."""

    def act(self, view: DecisionView) -> int:
        """Return a valid action: `slot * N + node`, or `view.wait_action` to wait."""
        ...
