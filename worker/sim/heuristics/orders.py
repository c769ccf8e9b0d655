"""Job orders: which waiting job a heuristic wants to start next.

Each order maps the window to one key per slot; the smallest key goes first and ties go
to the oldest job (the window is in submit order). Keys are computed from what a real
scheduler knows at the decision: sizes, runtime estimates, deadlines, priorities and the
clock, never the actual runtimes.

The RLScheduler orders (f1, wfp3, unicep) follow Zhang et al. (SC20) as their code scores
jobs; their "processors" is the resource a job is sized by here: GPUs for GPU jobs, CPUs
for CPU-only jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from worker.sim.bound import fastest_ever
from worker.sim.engine import ClusterSim
from worker.sim.policy import DecisionView

LATE = 1e15
"""Key offset that sends jobs which can no longer meet their deadline to the back."""


@dataclass(frozen=True, slots=True)
class Order:
    name: str
    key: Callable[[DecisionView], np.ndarray]
    needs_deadlines: bool
    description: str


def _size(sim: ClusterSim, w: np.ndarray) -> np.ndarray:
    return np.where(sim.cpu_only[w], sim.cpu[w], sim.gpu[w])


def _fifo(view: DecisionView) -> np.ndarray:
    return np.zeros(len(view.window))


def _sjf(view: DecisionView) -> np.ndarray:
    return view.sim.estimate[view.window]


def _edf(view: DecisionView) -> np.ndarray:
    return view.sim.deadline[view.window]


def _priority(view: DecisionView) -> np.ndarray:
    return -view.sim.priority[view.window]


def _laxity(view: DecisionView) -> np.ndarray:
    sim, w = view.sim, view.window
    speed = np.maximum(fastest_ever(sim)[w], 1e-9)
    laxity = sim.deadline[w] - sim.now - sim.estimate[w] / speed
    priority = np.maximum(sim.priority[w], 1.0)
    return np.where(laxity >= 0, laxity / priority, LATE - priority)


def _f1(view: DecisionView) -> np.ndarray:
    sim, w = view.sim, view.window
    estimate = np.maximum(sim.estimate[w], 1.0)
    submit = np.maximum(sim.submit[w], 1.0)
    return np.log10(estimate) * _size(sim, w) + 870.0 * np.log10(submit)


def _wfp3(view: DecisionView) -> np.ndarray:
    sim, w = view.sim, view.window
    wait = sim.now - sim.submit[w]
    return -np.power(wait / np.maximum(sim.estimate[w], 1e-9), 3) * _size(sim, w)


def _unicep(view: DecisionView) -> np.ndarray:
    sim, w = view.sim, view.window
    wait = sim.now - sim.submit[w]
    with np.errstate(divide="ignore", invalid="ignore"):
        key = -(wait + 1e-15) / (np.log2(_size(sim, w) + 1e-15) * np.maximum(sim.estimate[w], 1e-9))
    return np.nan_to_num(key, nan=0.0, posinf=LATE, neginf=-LATE)


def _sgt(view: DecisionView) -> np.ndarray:
    sim, w = view.sim, view.window
    return np.where(sim.cpu_only[w], 0.0, sim.gpu[w]) * sim.estimate[w]


ORDERS: dict[str, Order] = {
    o.name: o
    for o in (
        Order("fifo", _fifo, False, "submit order"),
        Order("sjf", _sjf, False, "shortest runtime estimate first"),
        Order("edf", _edf, True, "earliest deadline first"),
        Order("priority", _priority, False, "highest priority first"),
        Order(
            "laxity",
            _laxity,
            True,
            "least laxity per unit of priority (deadline - now - estimate on the fastest GPU "
            "it could get); jobs that can no longer make it go last",
        ),
        Order("f1", _f1, False, "RLScheduler's F1: log10(estimate) x size + 870 x log10(submit)"),
        Order("wfp3", _wfp3, False, "RLScheduler's WFP3: -(wait / estimate)^3 x size"),
        Order("unicep", _unicep, False, "RLScheduler's UNICEP: -wait / (log2(size) x estimate)"),
        Order("sgt", _sgt, False, "smallest GPU-time (GPUs x estimate) first: Tiresias without preemption"),
    )
}
