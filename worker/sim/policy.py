"""The one interface every scheduling policy implements, learned or heuristic."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from worker.sim.env import DecisionView


@runtime_checkable
class Policy(Protocol):
    name: str
    needs_observation: bool
    """False lets the env skip building features (heuristics read the engine directly).
    A policy may also carry `env_options`, extra env config it was trained with (a
    learned policy's `prior`)."""

    def reset(self, seed: int) -> None:
        """Called at the start of each episode; stochastic policies reseed here."""

    def act(self, view: DecisionView) -> int:
        """Return a valid action: `slot * N + node`, or `view.wait_action` to wait."""
        ...
