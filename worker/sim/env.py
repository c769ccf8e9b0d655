"""The gymnasium environment: one decision per step over (window job, node) pairs or WAIT.

How to run: `SchedulingEnv(EnvConfig(workload="steady", nodes=16, window=32))` (or the
same as a dict, which is what RLlib passes, or `gymnasium.make(
"rlsched/ClusterScheduling-v0", nodes=16, window=32)` once `worker.sim` is imported),
then the usual `reset(seed=...)` / `step(action)` loop. Action `a < K*N` places window
slot `a // N` on node `a % N`; `a == K*N` is WAIT. The observation's `action_mask` says
which actions are valid; a masked action is treated as WAIT (never punished), so random
exploration cannot corrupt the simulation. A learner that should see a teacher
heuristic's choice wraps the env (worker/sim/teacher.py): the env knows no heuristic.

Between decisions the env skips time forward until some job fits (or the episode ends),
so every step the agent sees is a real choice.

Two variants, for the published experiments we stand beside: with config `backfilling:
False` a decision picks the next job to start even if it does not fit yet, and nothing
else starts before it (RLScheduler without backfilling); a scenario with
`placement_only` (FGD's inflation experiment) fails a job that fits nowhere on arrival
instead of queueing it, and ends with the last arrival.

Reward (config `objective`, default `deadline`; all in worker/sim/objectives.py): the
headline score is sum(priority of jobs finished by their deadline) / sum(all
priorities). When a job starts the env pays its priority share if it will finish by its
deadline at its actual runtime, and takes that back if a node failure kills it. The
undiscounted episode return therefore equals the episode's score exactly; likewise
minus the mean bounded slowdown (`slowdown`), the utilisation (`utilization`, paid at the
end) and the GPU allocation ratio (`allocation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import gymnasium as gym
import numpy as np

from worker.sim.engine import ClusterSim
from worker.sim.features import FeatureScales, PairState, build_observation, observation_space
from worker.sim.fragmentation import fgd_device, shape_table
from worker.sim.metrics import EpisodeMetrics, episode_metrics
from worker.sim.model import Scenario
from worker.sim.policy import DecisionView
from worker.sim.workloads import WorkloadSpec, make_scenario


@dataclass(frozen=True, slots=True)
class EnvConfig:
    """Everything an env is built from (CleanRL's Args): RLlib's env_config dict and
    gymnasium.make's keyword arguments name these fields."""

    workload: str = "steady"
    """Preset or trace episodes are drawn from when reset is given no scenario (worker/sim/workloads.py)."""
    nodes: int = 16
    """Nodes in the cluster (N); a scenario given to reset must have exactly this many."""
    load: float | None = None
    """Offered load of the drawn episodes; None keeps the workload's own."""
    jobs: int = WorkloadSpec().jobs
    """Jobs per drawn episode."""
    window: int = 32
    """Waiting jobs a decision sees (K): the action space is K*N pairs plus WAIT."""
    seed: int = 0
    """First seed of the scenario draws of an env that picks its own (RLlib's training
    env, worker/rl/config.py); `reset(seed=...)` seeds this env's own draws."""
    objective: str = "deadline"
    """What the reward pays (worker/sim/objectives.py); the return equals its metric."""
    observe: bool = True
    """False skips building observations: heuristics read the engine, not features."""
    backfilling: bool = True
    """False: a decision picks the next job to start, whether it fits now or not, and
    nothing else starts before it does (RLScheduler's setting without backfilling);
    every policy, heuristic or learned, then schedules strictly in its chosen order."""

    @classmethod
    def of(cls, config: EnvConfig | Mapping[str, Any] | None = None, **overrides: Any) -> EnvConfig:
        """A config from what callers have: an EnvConfig, RLlib's dict (an EnvContext) or
        nothing, with `overrides` (gymnasium.make's keyword arguments) on top. An unknown
        name is an error, not silently ignored."""
        base = config if isinstance(config, EnvConfig) else None
        given = dict(config) if base is None and config is not None else {}
        given |= overrides
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(given) - known):
            raise ValueError(f"unknown env config {unknown}; known: {sorted(known)}")
        return cls(**given) if base is None else replace(base, **given)


class SchedulingEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, config: EnvConfig | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        self.config = cfg = EnvConfig.of(config, **overrides)
        self.spec_workload = WorkloadSpec(cfg.workload, cfg.nodes, cfg.load, cfg.jobs)
        self.window = cfg.window
        self.n_nodes = cfg.nodes
        self.objective = cfg.objective
        self.observe = cfg.observe
        self.backfilling = cfg.backfilling
        self.observation_space = observation_space(self.window, self.n_nodes)
        self.action_space = gym.spaces.Discrete(self.window * self.n_nodes + 1)
        self.sim: ClusterSim | None = None
        self.sim_seed = 0
        """The engine's seed this episode (failure draws); a wrapper's teacher reseeds from it."""
        self._pairs: PairState | None = None
        self._obs: dict[str, np.ndarray] | None = None
        self._wait_ok = True
        self._valid: np.ndarray | None = None
        """Without backfilling, the pairs a decision may pick: those that fit now, and for a
        job that fits nowhere now, every node that could ever hold it."""

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """New episode. `options={"scenario": Scenario}` runs a given scenario (its node
        count must match the env's); otherwise a fresh one is drawn from the workload."""
        super().reset(seed=seed)
        options = options or {}
        scenario: Scenario | None = options.get("scenario")
        episode_seed = int(self.np_random.integers(2**31 - 1))
        if scenario is None:
            scenario = make_scenario(self.spec_workload, episode_seed)
        if len(scenario.nodes) != self.n_nodes:
            raise ValueError(
                f"scenario has {len(scenario.nodes)} nodes but the env was built for {self.n_nodes}"
            )
        self.load_scenario(scenario, int(options.get("sim_seed", episode_seed)))
        return self._obs, {}

    def load_scenario(self, scenario: Scenario, sim_seed: int = 0) -> None:
        self.sim_seed = sim_seed
        self.attach(ClusterSim(scenario, self.window, seed=sim_seed, objective=self.objective))

    def attach(self, sim: ClusterSim) -> None:
        """Play on from `sim`'s current state: a new engine (a search's belief), or this
        env's own engine after `sim.restore(...)` put it back at an earlier decision."""
        if sim is not self.sim:
            self.scenario = sim.scenario
            self.sim = sim
            self.scales = FeatureScales(sim)
            self._pair_state = PairState(sim, self.scales)
            self._table = shape_table(sim) if sim.scenario.placement_only else None
            """FGD's typical shapes: a placement-only episode puts a fractional job on the device
            of the chosen node where it fragments least, as FGD's experiment does for every policy."""
        self._settle()

    @property
    def wait_allowed(self) -> bool:
        """Whether WAIT is offered at the current decision (the last entry of the mask)."""
        return self._wait_ok

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        sim = self.sim
        assert sim is not None and self._pairs is not None, "call reset() first"
        action = int(action)
        n = self.n_nodes
        reward = 0.0
        valid = self._pairs.fits if self._valid is None else self._valid
        if action >= self.window * n or not valid[action // n, action % n]:
            # WAIT is masked only when nothing is left to wait for: then the first valid pair
            action = -1 if self._wait_ok or not valid.any() else int(np.flatnonzero(valid.ravel())[0])
        if action < 0:
            reward += sim.advance(self.scenario.horizon_s)
        elif self._pairs.fits[action // n, action % n]:
            reward += self._place(action // n, action % n)
        else:
            reward += self._start_when_it_fits(action // n, action % n)
        reward += self._settle()
        terminated = sim.done or self._all_placed()
        truncated = not terminated and sim.now >= self.scenario.horizon_s
        info = {}
        if terminated or truncated:
            info["metrics"] = metrics = self.metrics()
            if self.objective == "utilization":
                reward += metrics.utilization
        return self._obs, float(reward), terminated, truncated, info

    def _place(self, slot: int, node: int) -> float:
        sim = self.sim
        device = (
            -1 if self._table is None else fgd_device(sim, int(self._pairs.window[slot]), node, self._table)
        )
        return sim.place(slot, node, device)

    def _start_when_it_fits(self, slot: int, node: int) -> float:
        """Without backfilling: hold everything back until the chosen job fits its node."""
        sim = self.sim
        job = int(self._pairs.window[slot])
        horizon = self.scenario.horizon_s
        reward = 0.0
        one = np.array([job])
        while not sim.fit(one).fits[0, node]:
            if sim.now >= horizon or not sim.has_future_events():
                return reward
            reward += sim.advance(horizon)
        return reward + sim.place(sim.waiting.index(job), node)

    def _strict_pairs(self) -> np.ndarray:
        sim, pairs = self.sim, self._pair_state
        window = pairs.window
        ever = sim.fit(window, sim.cap_cpu, sim.cap_mem, sim.cap_whole, sim.cap_share, sim.usable).fits
        ever &= (window < sim.n_jobs)[:, None]
        return pairs.fits | (ever & ~pairs.fits.any(axis=1, keepdims=True))

    def _all_placed(self) -> bool:
        """A placement-only episode ends with the last arrival: its pods never leave."""
        sim = self.sim
        return self.scenario.placement_only and sim.next_arrival >= sim.n_jobs and not sim.waiting

    def _settle(self) -> float:
        """Advance time until some pair is valid or the episode is over. In a placement-only
        episode the window's jobs that fit nowhere fail instead of waiting."""
        sim = self.sim
        horizon = self.scenario.horizon_s
        reward = 0.0
        pairs = self._pair_state
        pairs.new_decision(fresh_pairs=self.observe)
        while True:
            if self._table is not None and not pairs.any_fit and sim.waiting:
                for slot in reversed(range(min(len(sim.waiting), self.window))):
                    sim.discard(slot)
                pairs.refresh()
                continue
            if not self.backfilling:
                self._valid = self._strict_pairs()
            any_valid = pairs.any_fit if self._valid is None else bool(self._valid.any())
            if any_valid or sim.done or sim.now >= horizon or not sim.has_future_events():
                break
            if self._all_placed():
                break
            sim.changed = False
            reward += sim.advance(horizon)
            if sim.changed:
                pairs.refresh()
        self._pairs = pairs
        over = sim.done or sim.now >= horizon or self._all_placed()
        # Placement-only jobs cannot wait, and without backfilling a job is picked rather
        # than waited for: WAIT is offered only when there is no choice.
        hold_ok = self._table is None and self._valid is None
        self._wait_ok = over or not any_valid or (sim.has_future_events() and hold_ok)
        if self.observe:
            self._obs = build_observation(sim, self.scales, pairs, horizon, self._wait_ok)
            if self._valid is not None:
                self._obs["action_mask"][:-1] = self._valid.ravel()
        return reward

    def decision_view(self) -> DecisionView:
        assert self._pairs is not None
        p = self._pairs
        fits = p.fits if self._valid is None else self._valid
        return DecisionView(self._obs, self.sim, p.window, fits, p.speed)

    def metrics(self) -> EpisodeMetrics:
        assert self.sim is not None
        return episode_metrics(self.sim)
