"""`search:<base>`: a rollout policy over any base policy, a Policy like the others.

At each decision the base chooses as usual; then the search builds a belief of the
cluster (worker/search/belief.py: only what a scheduler knows), and rolls each
candidate (worker/search/candidates.py) out by the base on the same beliefs (common
random numbers). It plays another candidate than the base's only on evidence: a mean
gain above `margin` and, with several sampled futures, above `z` standard errors of the
paired differences. Ties go to the base, so on a belief that is the truth (no future
arrivals, runtimes = estimates, no failures, rollouts to the end) the search is never
worse than its base: each decision keeps a continuation at least as good as the base's.

With `depth` 2 (the default) the rollouts are played by the depth-1 search over the base
rather than by the base itself: a search over a search, whose first candidate is the
inner search's choice. Its own guarantee then holds against the inner search, and so
against the base.

When the base's own rollouts earn everything their beliefs could pay (every pending
job's whole reward: `RolloutEnv.ceiling`, for objectives whose rewards are never
negative), no other candidate can gain on it and none is rolled out: the decision is the
same, at a fraction of the cost (most decisions of FGD's inflation experiment before the
cluster fills up).

The time budget is anytime: candidates are evaluated in order, each on every sampled
future, and when the budget runs out the best complete one so far is played; searches
inside a rollout stop at the same time limit. With a binding budget, how far a decision
gets depends on the machine, so only a non-binding budget is reproducible.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from worker.contracts import SEARCH_PREFIX
from worker.contracts.search import SearchOptions
from worker.search.belief import (
    FUTURES_SEED_OFFSET,
    build_belief,
    calibrated_factors,
    future_jobs,
    known_shapes,
    runtime_factors,
    sampled_runtimes,
)
from worker.search.candidates import candidate_actions
from worker.search.rollout import RolloutEnv
from worker.sim.engine import ClusterSim
from worker.sim.fragmentation import ShapeTable
from worker.sim.heuristics.tuned import tuning_spec
from worker.sim.model import Scenario
from worker.sim.policy import DecisionView, Policy
from worker.sim.workloads import WorkloadSpec, make_scenario

GAIN_TOLERANCE = 1e-9
"""Gains below this are float noise, not evidence: such a candidate ties with the base."""


@dataclass(slots=True)
class SearchStats:
    """What the search did (since it was made): for plans' notes and cost figures."""

    decisions: int = 0
    searched: int = 0
    """Decisions with more than one candidate to compare."""
    changed: int = 0
    """Decisions where the search played another action than the base's."""
    candidates: int = 0
    """Candidates fully evaluated (the base's choice included)."""
    out_of_time: int = 0
    """Decisions where the budget ran out before every candidate was evaluated."""
    at_ceiling: int = 0
    """Decisions settled by the base's rollouts alone: they earned all a rollout could."""
    rollout_steps: int = 0
    rollout_seconds: float = 0.0
    """Time inside rollouts (restore, the base's decisions and the belief's steps)."""
    seconds: float = 0.0

    @property
    def ms_per_decision(self) -> float:
        return 1000.0 * self.seconds / self.decisions if self.decisions else 0.0


def _fork(policy: Policy, engine: ClusterSim, other: ClusterSim, job_index: Callable[[int], int]) -> Policy:
    """The base continuing its episode on `other`, where job `j` of `engine` is
    `job_index(j)`; a base without per-episode state (no `fork`) is used as it is."""
    fork = getattr(policy, "fork", None)
    return fork(engine, other, job_index) if fork is not None else policy


def _heuristic(name: str, workload: WorkloadSpec | None, like: Policy) -> Policy:
    """A portfolio member by name; `tuned` needs the workload (and the base's window)."""
    from worker.sim.heuristics import TUNED, make_heuristic
    from worker.sim.heuristics.tuned import make_tuned

    if name != TUNED:
        return make_heuristic(name)
    if workload is None:
        raise ValueError("a portfolio with 'tuned' needs the workload it is tuned for")
    return make_tuned(workload, int(getattr(like, "window", 32)))


def choose(values: list[np.ndarray], margin: float, z: float) -> int:
    """Index of the candidate to play: 0 (the base's) unless another's paired gain over it
    beats `margin` (and `z` standard errors when there are several samples)."""
    best, best_gain = 0, 0.0
    for i, v in enumerate(values[1:], 1):
        gain = v - values[0]
        mean = float(gain.mean())
        if len(gain) > 1 and mean <= z * float(gain.std(ddof=1)) / math.sqrt(len(gain)):
            continue
        if mean > margin + GAIN_TOLERANCE and mean > best_gain:
            best, best_gain = i, mean
    return best


class SearchPolicy:
    """`search:<base>` (see the module docstring). `workload` is what sampled futures are
    drawn from (its training split for a held-out trace); `env_options` must be the
    episode's own (e.g. `backfilling: False`), so rollouts step as the episode does;
    `tuned_for` is the workload a portfolio's `tuned` is chosen for (default `workload`)."""

    def __init__(
        self,
        base: Policy,
        options: SearchOptions | None = None,
        workload: WorkloadSpec | None = None,
        env_options: dict[str, Any] | None = None,
        tuned_for: WorkloadSpec | None = None,
    ) -> None:
        options = options or SearchOptions()
        if options.futures == "sampled" and workload is None:
            raise ValueError("search futures='sampled' needs the workload to sample arrivals from")
        self.name = f"{SEARCH_PREFIX}{base.name}"
        tuned_for = tuned_for or workload
        self.portfolio = [_heuristic(name, tuned_for, base) for name in options.portfolio]
        """Policies that roll candidates out beside the base (`options.portfolio`)."""
        if options.depth > 1:
            inner = options.model_copy(update={"depth": options.depth - 1})
            base = SearchPolicy(base, inner, workload, env_options, tuned_for)
        self.base = base
        """What plays the rollouts and makes the first candidate: the base policy itself, or
        with `depth` d > 1 the search of depth d - 1 over it."""
        self.options = options
        self.workload = workload
        self.deadline: float | None = None
        """Set on the copy an outer search rolls out with: the outer decision's time limit,
        which this search's decisions inside the rollout respect too."""
        self.needs_observation = bool(getattr(base, "needs_observation", True))
        self.env_options = dict(getattr(base, "env_options", {})) | dict(env_options or {})
        self.stats = SearchStats()
        self._rollout_envs: list[RolloutEnv] = []
        self._samples: list[Scenario] | None = None
        self._shapes: tuple[ClusterSim, int, ShapeTable] | None = None
        """The last decision's typical job shapes, and when: (engine, jobs submitted, shapes)."""
        self._seed = 0
        self._decision = 0
        """Decisions so far in this episode: seeds its runtime samples."""
        self.last_values: dict[int, float] = {}
        """The last decision's fully evaluated candidates (action -> mean rollout value,
        the base's choice first), empty when nothing was compared: what a search-labelled
        dataset records as the search's evidence (worker/rl/labels.py)."""

    def fork(
        self, engine: ClusterSim, other: ClusterSim, job_index: Callable[[int], int] = int
    ) -> SearchPolicy:
        """A copy for an outer search's rollout on `other` (a belief of `engine`): the base's
        per-episode state carries over, as for a heuristic."""
        twin = copy.copy(self)
        twin.base = _fork(self.base, engine, other, job_index)
        twin.portfolio = [_fork(p, engine, other, job_index) for p in self.portfolio]
        return twin

    def reset(self, seed: int) -> None:
        self.base.reset(seed)
        for policy in self.portfolio:
            policy.reset(seed)
        self._seed = seed
        self._samples = None
        self._shapes = None
        self._decision = 0

    def _sampled_episodes(self) -> list[Scenario]:
        """The episode's sampled futures: `rollouts` whole episodes of the workload on seeds
        no evaluation uses, drawn once per episode; each decision takes their arrivals
        after now."""
        if self._samples is None:
            assert self.workload is not None
            spec = tuning_spec(self.workload)
            states = np.random.SeedSequence([self._seed, 0x5EA4C4]).generate_state(self.options.rollouts)
            self._samples = [make_scenario(spec, FUTURES_SEED_OFFSET + int(s)) for s in states]
        return self._samples

    def _known_shapes(self, sim: ClusterSim) -> ShapeTable:
        """The typical job shapes every belief of this decision shares (a decision's sampled
        futures are several beliefs), rebuilt only when a job has arrived since."""
        cached = self._shapes
        if cached is not None and cached[0] is sim and cached[1] == sim.next_arrival:
            return cached[2]
        shapes = known_shapes(sim)
        self._shapes = (sim, sim.next_arrival, shapes)
        return shapes

    def _envs(self, sim: ClusterSim, count: int) -> list[RolloutEnv]:
        k, n = sim.window, len(sim.free_cpu)
        envs = [e for e in self._rollout_envs if e.base_env.window == k and e.base_env.n_nodes == n]
        while len(envs) < count:
            envs.append(RolloutEnv(n, k, sim.objective, self.needs_observation, self.env_options))
        self._rollout_envs = envs
        return envs[:count]

    def _beliefs(self, sim: ClusterSim) -> list[tuple[RolloutEnv, int]]:
        """The samples of this decision's belief, as (env, sample) pairs: one per sampled
        future (each its own belief), or one belief with a sample per runtime draw, or just
        the belief when nothing is sampled."""
        options = self.options
        sampled = options.futures == "sampled" or options.runtimes == "sampled"
        count = options.rollouts if sampled else 1
        factors: list[np.ndarray | None] = [None] * count
        if options.runtimes == "sampled":
            rng = np.random.default_rng([FUTURES_SEED_OFFSET, self._seed, self._decision])
            factors = runtime_factors(sim, rng, count)
        elif options.runtimes == "calibrated":
            factors = [calibrated_factors(sim)] * count
        if options.futures == "sampled":
            futures = [
                future_jobs(s, sim.now, sim.gpu_types, options.arrivals, float(sim.submit[0]))
                for s in self._sampled_episodes()
            ]
            envs = self._envs(sim, count)
            shapes = self._known_shapes(sim)
            for env, jobs, draw in zip(envs, futures, factors, strict=True):
                env.start(build_belief(sim, jobs, draw, shapes))
            return [(env, 0) for env in envs]
        env = self._envs(sim, 1)[0]
        belief = build_belief(sim, None, None, self._known_shapes(sim))
        env.start(belief, [sampled_runtimes(belief, f) for f in factors if f is not None])
        return [(env, i) for i in range(env.samples)]

    def act(self, view: DecisionView) -> int:
        started = time.perf_counter()
        out_of_time = min(started + self.options.budget_ms / 1000.0, self.deadline or math.inf)
        stats = self.stats
        stats.decisions += 1
        self._decision += 1
        self.last_values = {}
        base_action = int(self.base.act(view))
        others = [int(p.act(view)) for p in self.portfolio]
        try:
            if self.options.candidates == 1:
                return base_action
            samples = self._beliefs(view.sim)
            envs = list({id(env): env for env, _ in samples}.values())
            actions = candidate_actions(
                view,
                self.base,
                base_action,
                self.options.candidates,
                self.options.wait and envs[0].wait_allowed,
                self.options.other_speeds,
                self.options.nodes_per_job,
                others,
            )
            if len(actions) == 1:
                return base_action
            stats.searched += 1
            values: list[np.ndarray] = []
            steps_before = sum(e.steps for e in envs)
            for action in actions:
                row = []
                for env, sample in samples:
                    if time.perf_counter() > out_of_time:
                        break
                    rollout_started = time.perf_counter()
                    best = -math.inf
                    for policy in (self.base, *self.portfolio):
                        player = _fork(policy, view.sim, env.belief, env.belief.index_of)
                        if isinstance(player, SearchPolicy):
                            player.deadline = out_of_time
                        best = max(best, env.value(action, player, self.options.horizon, sample))
                    row.append(best)
                    stats.rollout_seconds += time.perf_counter() - rollout_started
                if len(row) < len(samples):
                    stats.out_of_time += 1
                    break
                values.append(np.array(row))
                if len(values) == 1 and all(
                    env.ceiling is not None and v >= env.ceiling - GAIN_TOLERANCE
                    for (env, _), v in zip(samples, row, strict=True)
                ):
                    stats.at_ceiling += 1
                    break
            stats.candidates += len(values)
            stats.rollout_steps += sum(e.steps for e in envs) - steps_before
            self.last_values = {a: float(v.mean()) for a, v in zip(actions, values, strict=False)}
            if not values:
                return base_action
            chosen = actions[choose(values, self.options.margin, self.options.z)]
            stats.changed += int(chosen != base_action)
            return chosen
        finally:
            stats.seconds += time.perf_counter() - started
