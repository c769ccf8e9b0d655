"""Classic scheduling heuristics on the same engine and interface as the learned policy.

A heuristic is an order x a placement x a mode, named `[easy:|strict:]ORDER[+PLACEMENT]`
(`edf+fastest`, `easy:sjf+deadline`); `packing` (Tetris) and `random` stand alone, and
`tuned` is the best composition for a workload, chosen on training seeds
(:mod:`.tuned`). The names of the first release keep their meaning: `fifo`, `sjf`, `edf`
and `priority` are greedy with the `first` placement.

Every heuristic picks among the pairs the env marks valid, so heuristics differ only in
which job goes first, where it goes and whether they hold a job back.
"""

from __future__ import annotations

from itertools import product

from worker.contracts import HEURISTIC_GRAMMAR as GRAMMAR
from worker.contracts import HEURISTIC_MODES as MODES
from worker.sim.heuristics.classic import RandomValid, TetrisPacking
from worker.sim.heuristics.composed import ComposedHeuristic, Composition, HeuristicNotApplicable, parse
from worker.sim.heuristics.orders import ORDERS
from worker.sim.heuristics.placements import PLACEMENTS

STANDALONE: dict[str, type] = {TetrisPacking.name: TetrisPacking, RandomValid.name: RandomValid}
TUNED = "tuned"

CLASSIC = ("fifo", "sjf", "edf", "priority", "packing", "random")
"""The first release's six heuristics (the default rows of `rlsched eval`)."""

HEURISTICS: dict[str, type] = {name: ComposedHeuristic for name in CLASSIC[:4]} | STANDALONE
"""Kept for callers of the first release: the classic names."""


def all_compositions(modes: tuple[str, ...] = tuple(MODES)) -> list[str]:
    """Every order x placement x mode, canonical names."""
    return [Composition(m, o, p).name for m, o, p in product(modes, ORDERS, PLACEMENTS)]


def heuristic_names() -> list[str]:
    """What a user may name: the grid, the standalone heuristics and `tuned`."""
    return [*all_compositions(), *STANDALONE, TUNED]


def make_heuristic(name: str):  # -> Policy (imported lazily by callers to avoid a cycle)
    """A heuristic by name; `tuned` needs a workload and is built by `tuned.make_tuned`."""
    if name in STANDALONE:
        return STANDALONE[name]()
    if name == TUNED:
        raise ValueError("'tuned' depends on the workload: build it with worker.sim.heuristics.tuned")
    try:
        return ComposedHeuristic(parse(name))
    except ValueError as error:
        raise ValueError(f"{error}. A heuristic is {GRAMMAR}, {', '.join(STANDALONE)} or {TUNED}") from None


__all__ = [
    "CLASSIC",
    "HEURISTICS",
    "ORDERS",
    "PLACEMENTS",
    "TUNED",
    "HeuristicNotApplicable",
    "all_compositions",
    "heuristic_names",
    "make_heuristic",
]
