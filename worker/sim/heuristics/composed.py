"""A heuristic named `[easy:|strict:]ORDER[+PLACEMENT]`: an order, a placement, a mode.

Modes say what happens when the job the order wants first does not fit anywhere now:
- greedy (no prefix): start the best-ordered job that fits (work-conserving; today's
  `fifo`, `sjf`, `edf`, `priority` are greedy with the `first` placement);
- `easy:`: reserve the earliest time and node for that job and start only jobs that
  cannot delay it (EASY backfilling, :mod:`.backfill`);
- `strict:`: wait for it, start nothing else (no backfilling at all).
In both, the job chosen when it had to wait stays the head until it starts, even if the
order (WFP3, UNICEP, laxity change with the clock) would later rank another job first.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from worker.contracts import HEURISTIC_MODES as MODES
from worker.contracts import parse_heuristic
from worker.sim.heuristics.backfill import may_backfill, reserve
from worker.sim.heuristics.orders import ORDERS, Order
from worker.sim.heuristics.placements import PLACEMENTS, Placement
from worker.sim.policy import DecisionView

DEFAULT_PLACEMENT = "first"


class HeuristicNotApplicable(ValueError):
    """The heuristic needs something the workload does not have (e.g. deadlines)."""


@dataclass(frozen=True, slots=True)
class Composition:
    mode: str
    order: str
    placement: str

    @property
    def name(self) -> str:
        """The canonical name: the `first` placement and greedy mode are implied."""
        suffix = "" if self.placement == DEFAULT_PLACEMENT else f"+{self.placement}"
        return f"{MODES[self.mode]}{self.order}{suffix}"


def parse(name: str) -> Composition:
    """Parse a composed name (the grammar lives in the contracts, shared with the API)."""
    return Composition(*parse_heuristic(name))


_LARGEST = np.finfo(np.float64).max


def _finite_keys(keys: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Order keys with +-inf clipped to the largest floats and NaN or an empty slot as
    inf, so a real job with an infinite key (no deadline) still ranks before an empty
    slot. `np.nan_to_num(keys, nan=np.inf)` says the same at ~10x the cost, which was a
    fifth of every heuristic decision."""
    clipped = np.minimum(np.maximum(keys, -_LARGEST), _LARGEST)
    return np.where(real & (clipped == clipped), clipped, np.inf)


class ComposedHeuristic:
    needs_observation = False

    def __init__(self, composition: Composition) -> None:
        self.composition = composition
        self.name = composition.name
        self.order: Order = ORDERS[composition.order]
        self.placement: Placement = PLACEMENTS[composition.placement]
        self._checked: object | None = None
        self._head: tuple[object, int] | None = None
        """(engine, job) the order committed to while it could not start."""
        self.lenient = False
        """Plans set this: a rule without deadlines to read then runs as if every deadline
        were infinite (edf keeps submit order, `deadline` places fastest) and `note` says so."""
        self.note: str | None = None

    def reset(self, seed: int) -> None:
        self._head = None

    def _head_slot(self, view: DecisionView, best: int) -> int:
        """The job the order chose when it last had to wait keeps its place at the head
        until it starts (as in RLScheduler's and classic EASY schedulers), even if the
        order would now rank another job first; `best` otherwise."""
        if self._head is None or self._head[0] is not view.sim:
            return best
        slots = np.flatnonzero(view.window == self._head[1])
        return int(slots[0]) if len(slots) else best

    def _check(self, view: DecisionView) -> None:
        """Refuse, once per episode, to run a deadline rule on jobs without deadlines."""
        sim = view.sim
        if self._checked is sim:
            return
        self._checked = sim
        needs = [p.name for p in (self.order, self.placement) if p.needs_deadlines]
        if needs and sim.n_jobs and not np.isfinite(sim.deadline[: sim.n_jobs]).any():
            problem = (
                f"{self.name}: {' and '.join(needs)} need job deadlines, and workload "
                f"{sim.scenario.name!r} has none; use an order and placement without deadlines"
            )
            if not self.lenient:
                raise HeuristicNotApplicable(problem)
            self.note = problem

    def _place(self, view: DecisionView, slot: int, candidates: np.ndarray) -> int:
        node = self.placement.place(view, slot, candidates)
        return slot * view.fits.shape[1] + node

    def act(self, view: DecisionView) -> int:
        self._check(view)
        fits, window = view.fits, view.window
        real = window < view.sim.n_jobs
        if not real.any():
            return view.wait_action
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            keys = _finite_keys(self.order.key(view), real)
        if self.composition.mode == "greedy":
            slot_ok = fits.any(axis=1)
            if not slot_ok.any():
                return view.wait_action
            slot = int(np.argmin(np.where(slot_ok, keys, np.inf)))
            return self._place(view, slot, fits[slot])
        ranked = np.argsort(keys, kind="stable")
        head = self._head_slot(view, int(ranked[0]))
        if fits[head].any():
            self._head = None
            return self._place(view, head, fits[head])
        self._head = (view.sim, int(window[head]))
        if self.composition.mode == "strict" or not fits.any():
            return view.wait_action
        reservation = reserve(view.sim, int(window[head]))
        for slot in ranked:
            slot = int(slot)
            if slot == head:
                continue
            if not real[slot]:
                break
            if not fits[slot].any():
                continue
            candidates = fits[slot]
            if reservation is not None:
                candidates = candidates & may_backfill(
                    view.sim, reservation, int(window[slot]), view.speed[slot]
                )
            if candidates.any():
                return self._place(view, slot, candidates)
        return view.wait_action

    def fork(self, engine: object, other: object, job_index: Callable[[int], int] = int) -> ComposedHeuristic:
        """A copy that continues this episode on `other`, a copy of `engine` (a search's
        belief, where job `j` of `engine` is `job_index(j)`): the head job the order
        committed to stays committed there."""
        twin = copy.copy(self)
        if self._head is not None and self._head[0] is engine:
            twin._head = (other, job_index(self._head[1]))
        if self._checked is engine:
            twin._checked = other
        return twin
