"""`tuned`: the best order x placement x mode for a workload, chosen on training seeds.

A user comparing a learned scheduler with heuristics would not stop at the textbook
ones: they would try the combinations on their own workload and keep the best. `tuned`
is that afternoon's work, done the same way every time so it can be a baseline.

Protocol (the search budget the README states):
- Episodes come from training seeds (>= 2**32, never an evaluation seed) and, for
  traces, from the training split: the held-out split and the held-out files are tuned
  on `trace:alibaba-default:train`, never on themselves.
- Stage 1: every composition (9 orders x 6 placements x 3 modes) and `packing` on
  `SCREEN_EPISODES` episodes. Stage 2: the `FINALISTS` best on `CONFIRM_EPISODES` more.
  The choice is the best mean over all of a finalist's episodes (ties: the earlier name).
- Choices are cached per process and can be pinned in `tuned.json` beside this file
  (written by `rlsched tune --save`), so a service does not re-tune on every start.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from worker.sim.evaluate import evaluate_policies
from worker.sim.heuristics import TUNED, all_compositions, make_heuristic
from worker.sim.heuristics.composed import HeuristicNotApplicable
from worker.sim.objectives import get_objective
from worker.sim.policy import DecisionView
from worker.sim.workloads import WorkloadSpec

TUNING_SEED_OFFSET = 2**32 + 1_000_000
"""Tuning episodes use seeds from here on: disjoint from evaluation seeds (32-bit) and
from the RL trainer's scenario seeds (2**32 + a few thousand)."""
SCREEN_EPISODES = 6
CONFIRM_EPISODES = 14
FINALISTS = 6
PINNED_FILE = Path(__file__).with_name("tuned.json")

_HELD_OUT_TRACES = (
    "trace:alibaba-default",
    "trace:alibaba-default:heldout",
    "trace:alibaba-gpuspec33",
    "trace:alibaba-multigpu50",
)
TRACE_TUNING_SPLIT = "trace:alibaba-default:train"


@dataclass(frozen=True, slots=True)
class TunedChoice:
    workload: str
    """The workload asked for."""
    tuned_on: str
    """The workload the choice was made on (the training split for held-out traces)."""
    nodes: int
    load: float | None
    jobs: int
    window: int
    choice: str
    score: float
    """Mean score of the choice on its tuning episodes."""
    seeds: list[int]
    candidates: int
    objective: str = "deadline"
    """`score` is this objective's value (higher is better)."""


def tuning_spec(spec: WorkloadSpec) -> WorkloadSpec:
    """The workload tuning may look at for `spec`: never a held-out file or split."""
    name = TRACE_TUNING_SPLIT if spec.name in _HELD_OUT_TRACES else spec.name
    return WorkloadSpec(name, spec.nodes, spec.load, spec.jobs)


def _key(spec: WorkloadSpec, window: int, objective: str = "deadline") -> str:
    tuned_on = tuning_spec(spec)
    key = f"{tuned_on.name}|nodes={spec.nodes}|load={spec.load}|jobs={spec.jobs}|window={window}"
    return key if objective == "deadline" else f"{key}|objective={objective}"


_cache: dict[str, TunedChoice] = {}
_lock = threading.Lock()


def _pinned() -> dict[str, dict]:
    if not PINNED_FILE.exists():
        return {}
    return json.loads(PINNED_FILE.read_text())


def tune(spec: WorkloadSpec, window: int = 32, objective: str = "deadline") -> TunedChoice:
    """Search the grid on training episodes of `spec` (see the module docstring)."""
    goal = get_objective(objective)
    tuned_on = tuning_spec(spec)
    seeds = [TUNING_SEED_OFFSET + i for i in range(SCREEN_EPISODES + CONFIRM_EPISODES)]
    screen, confirm = seeds[:SCREEN_EPISODES], seeds[SCREEN_EPISODES:]
    names = [*all_compositions(), "packing"]
    scores: dict[str, float] = {}
    for name in names:
        try:
            result = evaluate_policies([make_heuristic(name)], tuned_on, window, 0, 0, seeds=screen)
        except HeuristicNotApplicable:
            continue
        scores[name] = goal.value(result[0].metrics)
    finalists = sorted(scores, key=lambda n: (-scores[n], names.index(n)))[:FINALISTS]
    results = evaluate_policies([make_heuristic(n) for n in finalists], tuned_on, window, 0, 0, seeds=confirm)
    n1, n2 = len(screen), len(confirm)
    final = {r.policy: (scores[r.policy] * n1 + goal.value(r.metrics) * n2) / (n1 + n2) for r in results}
    choice = max(finalists, key=lambda n: (final[n], -finalists.index(n)))
    return TunedChoice(
        spec.name,
        tuned_on.name,
        spec.nodes,
        spec.load,
        spec.jobs,
        window,
        choice,
        final[choice],
        seeds,
        len(names),
        objective,
    )


def tuned_choice(spec: WorkloadSpec, window: int = 32, objective: str = "deadline") -> TunedChoice:
    """The pinned or cached choice for `spec`, tuning once if there is none."""
    key = _key(spec, window, objective)
    with _lock:
        if key in _cache:
            return _cache[key]
        pinned = _pinned().get(key)
        choice = TunedChoice(**pinned) if pinned else tune(spec, window, objective)
        _cache[key] = choice
        return choice


def pin(choice: TunedChoice, window: int) -> None:
    """Record a choice in `tuned.json` so later processes use it without re-tuning."""
    spec = WorkloadSpec(choice.workload, choice.nodes, choice.load, choice.jobs)
    table = _pinned()
    table[_key(spec, window, choice.objective)] = asdict(choice)
    PINNED_FILE.write_text(json.dumps(dict(sorted(table.items())), indent=1) + "\n")


class TunedHeuristic:
    """The chosen composition under the name `tuned`; `choice` says what it runs."""

    name = TUNED
    needs_observation = False

    def __init__(self, choice: TunedChoice) -> None:
        self.choice = choice
        self.inner = make_heuristic(choice.choice)

    def reset(self, seed: int) -> None:
        self.inner.reset(seed)

    def act(self, view: DecisionView) -> int:
        return self.inner.act(view)

    def fork(self, engine: object, other: object, job_index: Callable[[int], int] = int) -> TunedHeuristic:
        """A copy that continues this episode on `other` (see ComposedHeuristic.fork)."""
        twin = copy.copy(self)
        fork = getattr(self.inner, "fork", None)  # `packing` keeps no state to carry over
        twin.inner = fork(engine, other, job_index) if fork is not None else self.inner
        return twin


def make_tuned(spec: WorkloadSpec, window: int = 32, objective: str = "deadline") -> TunedHeuristic:
    return TunedHeuristic(tuned_choice(spec, window, objective))
