"""Observation layout and its construction from engine state.

The policy scores (job, node) pairs with shared weights, so everything is laid out per
job, per node and per pair; K (window) and N (nodes) are free dimensions. All features
are normalised to roughly [-1, 5] so one policy transfers across cluster sizes and time
scales: resources relative to the node (or the largest node), times relative to the
scenario's mean runtime estimate.
"""

from __future__ import annotations

import functools
import math

import gymnasium as gym
import numba
import numpy as np

from worker.sim.engine import EPS, RUNNING, ClusterSim

JOB_FEATURES = 9
"""valid, cpus, memory, gpus (each / largest node), priority/3, log runtime estimate,
log wait so far, deadline slack, restricted to some GPU types."""
NODE_FEATURES = 9
"""usable, free cpu / memory / gpu fractions, cpu and gpu capacity / largest node,
fastest GPU speed, running jobs, log time until its next job ends by the estimates
(0 when nothing runs): when a node frees up is what makes holding a job back worth it."""
PAIR_FEATURES = 6
"""fits now, GPU speed it would get, cpu and gpu fraction left after placing, would
meet its deadline if started now, log runtime on this node."""
GLOBAL_FEATURES = 8
"""waiting jobs, jobs beyond the window, cpu and gpu utilisation, share of jobs arrived,
time / horizon, whether anything is still to happen (WAIT is useful), log time until
the next arrival (5 when none is due)."""


PRIOR_KEY = "prior"
"""Observation entry added by a teacher heuristic's wrapper (worker/sim/teacher.py): one-hot
over the K*N+1 actions, 1 at the action the teacher would take now."""


@functools.lru_cache(maxsize=64)
def observation_space(window: int, nodes: int, prior: bool = False) -> gym.spaces.Dict:
    """One instance per shape: building the five Boxes took ~0.5 ms, a tenth of a plan's
    rollout, and every rollout builds an env."""

    def box(*shape: int) -> gym.spaces.Box:
        return gym.spaces.Box(-np.inf, np.inf, shape=shape, dtype=np.float32)

    actions = window * nodes + 1
    spaces = {
        "jobs": box(window, JOB_FEATURES),
        "nodes": box(nodes, NODE_FEATURES),
        "pairs": box(window, nodes, PAIR_FEATURES),
        "global": box(GLOBAL_FEATURES),
        "action_mask": gym.spaces.Box(0.0, 1.0, shape=(actions,), dtype=np.float32),
    }
    if prior:
        spaces[PRIOR_KEY] = gym.spaces.Box(0.0, 1.0, shape=(actions,), dtype=np.float32)
    return gym.spaces.Dict(spaces)


class FeatureScales:
    """Per-scenario constants and the static part of every feature row, computed once
    per episode so the step only fills in what changes."""

    def __init__(self, sim: ClusterSim) -> None:
        n = sim.n_jobs
        self.time = max(float(np.mean(sim.estimate[:n])) if n else 1.0, 1.0)
        self.inv_time = 1.0 / self.time
        max_cpu = max(float(sim.cap_cpu.max(initial=0.0)), 1e-9)
        max_mem = max(float(sim.cap_mem.max(initial=0.0)), 1e-9)
        gpu_total = sim.cap_gpu.sum(axis=1)
        max_gpu = max(float(gpu_total.max(initial=0.0)), 1e-9)
        self.inv_cap_cpu = np.where(sim.cap_cpu > 0, 1.0 / np.maximum(sim.cap_cpu, 1e-9), 0.0)
        self.inv_cap_mem = np.where(sim.cap_mem > 0, 1.0 / np.maximum(sim.cap_mem, 1e-9), 0.0)
        self.inv_cap_gpu = np.where(gpu_total > 0, 1.0 / np.maximum(gpu_total, 1e-9), 0.0)
        self.inv_total_cpu = 1.0 / max(float(sim.cap_cpu.sum()), 1e-9)
        self.inv_total_gpu = 1.0 / float(gpu_total.sum()) if gpu_total.sum() > 0 else 0.0

        self.static_nodes = np.zeros((len(sim.cap_cpu), NODE_FEATURES), dtype=np.float32)
        self.static_nodes[:, 4] = sim.cap_cpu / max_cpu
        self.static_nodes[:, 5] = gpu_total / max_gpu
        self.static_nodes[:, 6] = sim.speed.max(axis=1, initial=0.0)

        # One row per job plus the sentinel (all zeros: an empty window slot).
        jobs = np.zeros((n + 1, JOB_FEATURES), dtype=np.float32)
        jobs[:n, 0] = 1.0
        jobs[:n, 1] = np.minimum(sim.cpu[:n] / max_cpu, 4.0)
        jobs[:n, 2] = np.minimum(sim.mem[:n] / max_mem, 4.0)
        jobs[:n, 3] = np.minimum(sim.gpu[:n] / max_gpu, 4.0)
        jobs[:n, 4] = sim.priority[:n] / 3.0
        jobs[:n, 5] = np.log1p(sim.estimate[:n] * self.inv_time)
        jobs[:n, 8] = ~(sim.allowed[:n].all(axis=1) | sim.cpu_only[:n])
        self.static_jobs = jobs


@numba.njit(cache=True, nogil=True)
def _pair_kernel(
    window: np.ndarray,
    cpu: np.ndarray,
    mem: np.ndarray,
    gpu: np.ndarray,
    allowed: np.ndarray,
    estimate: np.ndarray,
    deadline: np.ndarray,
    free_cpu: np.ndarray,
    free_mem: np.ndarray,
    free_gpu: np.ndarray,
    whole_free: np.ndarray,
    max_share: np.ndarray,
    free_gpu_total: np.ndarray,
    speed: np.ndarray,
    usable: np.ndarray,
    inv_cap_cpu: np.ndarray,
    inv_cap_gpu: np.ndarray,
    now: float,
    inv_time: float,
    fits: np.ndarray,
    best_speed: np.ndarray,
    pairs: np.ndarray,
) -> bool:
    """Fit, GPU type choice and pair features in one pass over K x N.

    This is the env's hot loop: as numpy it is ~40 tiny array operations per step, each
    dominated by call overhead; compiled, the same arithmetic is a few microseconds.
    `ClusterSim.fit` is the vectorised reference it is tested against.
    """
    any_fit = False
    n_types = free_gpu.shape[1]
    for n in range(free_cpu.shape[0]):
        total = 0.0
        for t in range(n_types):
            total += free_gpu[n, t]
        free_gpu_total[n] = total
    for k in range(window.shape[0]):
        j = window[k]
        need_cpu, need_mem, need_gpu = cpu[j], mem[j], gpu[j]
        whole = need_gpu >= 1.0 - EPS
        devices = math.ceil(need_gpu - EPS) if whole and need_gpu < 1e9 else 0.0
        last_speed, log_run, meets = -1.0, 0.0, 0.0
        for n in range(free_cpu.shape[0]):
            s = 0.0
            if need_gpu == 0.0:
                s = 1.0
            else:
                for t in range(n_types):
                    if not allowed[j, t] or speed[n, t] <= s:
                        continue
                    if (whole and whole_free[n, t] >= devices) or (
                        not whole and max_share[n, t] >= need_gpu - EPS
                    ):
                        s = speed[n, t]
            ok = usable[n] and s > 0.0 and need_cpu <= free_cpu[n] + EPS and need_mem <= free_mem[n] + EPS
            fits[k, n] = ok
            best_speed[k, n] = s
            if ok:
                any_fit = True
                if s != last_speed:  # nodes of one GPU type share speeds: log once per speed
                    run = estimate[j] / s
                    last_speed, log_run = s, np.log1p(run * inv_time)
                    meets = 1.0 if now + run <= deadline[j] else 0.0
                pairs[k, n, 0] = 1.0
                pairs[k, n, 1] = s
                pairs[k, n, 2] = (free_cpu[n] - need_cpu) * inv_cap_cpu[n]
                pairs[k, n, 3] = (free_gpu_total[n] - need_gpu) * inv_cap_gpu[n]
                pairs[k, n, 4] = meets
                pairs[k, n, 5] = log_run
            else:
                for f in range(pairs.shape[2]):
                    pairs[k, n, f] = 0.0
    return any_fit


class PairState:
    """Fit and pair features of the current decision, computed once and shared by the
    mask, the observation and the heuristics. `refresh` recomputes in place, so the env
    can skip through events without allocating; one instance lives as long as its
    episode, and only `pairs`, which the observation hands out, is renewed per decision
    (`new_decision`)."""

    def __init__(self, sim: ClusterSim, scales: FeatureScales) -> None:
        k, n = sim.window, len(sim.free_cpu)
        self.sim = sim
        self.scales = scales
        self.fits = np.empty((k, n), dtype=np.bool_)
        self.speed = np.empty((k, n))
        self.pairs = np.empty((k, n, PAIR_FEATURES), dtype=np.float32)
        self.free_gpu_total = np.empty(n)
        self.refresh()

    def new_decision(self, fresh_pairs: bool) -> bool:
        """Recompute for the next decision; `fresh_pairs` when the last observation's pair
        array may still be referenced (RLlib keeps observations)."""
        if fresh_pairs:
            self.pairs = np.empty_like(self.pairs)
        return self.refresh()

    def refresh(self) -> bool:
        sim, scales = self.sim, self.scales
        self.window = sim.window_jobs()
        self.any_fit = _pair_kernel(
            self.window, sim.cpu, sim.mem, sim.gpu, sim.allowed, sim.estimate, sim.deadline,
            sim.free_cpu, sim.free_mem, sim.free_gpu, sim.whole_free, sim.max_share,
            self.free_gpu_total, sim.speed,
            sim.usable, scales.inv_cap_cpu, scales.inv_cap_gpu, sim.now, scales.inv_time,
            self.fits, self.speed, self.pairs,
        )  # fmt: skip
        return self.any_fit


@numba.njit(cache=True, nogil=True)
def _fill_jobs_nodes_mask(
    window: np.ndarray,
    n_jobs: int,
    submit: np.ndarray,
    deadline: np.ndarray,
    estimate: np.ndarray,
    static_jobs: np.ndarray,
    now: float,
    inv_time: float,
    static_nodes: np.ndarray,
    usable: np.ndarray,
    free_cpu: np.ndarray,
    free_mem: np.ndarray,
    free_gpu_total: np.ndarray,
    inv_cap_cpu: np.ndarray,
    inv_cap_mem: np.ndarray,
    inv_cap_gpu: np.ndarray,
    running_count: np.ndarray,
    state: np.ndarray,
    node_of: np.ndarray,
    expected_end: np.ndarray,
    next_submit: float,
    fits: np.ndarray,
    wait_ok: bool,
    n_waiting: int,
    next_arrival: int,
    horizon: float,
    has_future: bool,
    inv_total_cpu: float,
    inv_total_gpu: float,
    jobs: np.ndarray,
    nodes: np.ndarray,
    mask: np.ndarray,
    glob: np.ndarray,
) -> None:
    """Everything but the pairs (computed by `_pair_kernel`)."""
    for k in range(window.shape[0]):
        j = window[k]
        for f in range(static_jobs.shape[1]):
            jobs[k, f] = static_jobs[j, f]
        if j < n_jobs:
            jobs[k, 6] = np.log1p((now - submit[j]) * inv_time)
            slack = (deadline[j] - now - estimate[j]) * inv_time
            jobs[k, 7] = min(max(slack, -5.0), 5.0)
    cpu_free = 0.0
    gpu_free = 0.0
    soonest = np.full(free_cpu.shape[0], np.inf)
    for j in range(n_jobs):
        if state[j] == RUNNING and expected_end[j] < soonest[node_of[j]]:
            soonest[node_of[j]] = expected_end[j]
    for n in range(free_cpu.shape[0]):
        cpu_free += free_cpu[n]
        gpu_free += free_gpu_total[n]
        for f in range(static_nodes.shape[1]):
            nodes[n, f] = static_nodes[n, f]
        nodes[n, 0] = 1.0 if usable[n] else 0.0
        nodes[n, 1] = free_cpu[n] * inv_cap_cpu[n]
        nodes[n, 2] = free_mem[n] * inv_cap_mem[n]
        nodes[n, 3] = free_gpu_total[n] * inv_cap_gpu[n]
        nodes[n, 7] = running_count[n] * 0.125
        nodes[n, 8] = np.log1p(max(soonest[n] - now, 0.0) * inv_time) if soonest[n] < np.inf else 0.0
    flat = fits.ravel()
    for i in range(flat.shape[0]):
        mask[i] = 1.0 if flat[i] else 0.0
    mask[flat.shape[0]] = 1.0 if wait_ok else 0.0
    k = window.shape[0]
    glob[0] = math.log1p(n_waiting / k)
    glob[1] = math.log1p(max(0, n_waiting - k) / k)
    glob[2] = 1.0 - cpu_free * inv_total_cpu
    glob[3] = 1.0 - gpu_free * inv_total_gpu
    glob[4] = next_arrival / max(n_jobs, 1)
    glob[5] = min(now / horizon, 1.0) if horizon > 0 else 0.0
    glob[6] = 1.0 if has_future else 0.0
    glob[7] = min(np.log1p(max(next_submit - now, 0.0) * inv_time), 5.0) if next_submit < np.inf else 5.0


def build_observation(
    sim: ClusterSim, scales: FeatureScales, state: PairState, horizon: float, wait_ok: bool
) -> dict[str, np.ndarray]:
    """Observation for the current decision; fresh arrays (RLlib keeps references)."""
    window = state.window
    k, n = state.fits.shape
    jobs = np.empty((k, JOB_FEATURES), dtype=np.float32)
    nodes = np.empty((n, NODE_FEATURES), dtype=np.float32)
    mask = np.empty(k * n + 1, dtype=np.float32)
    glob = np.empty(GLOBAL_FEATURES, dtype=np.float32)
    _fill_jobs_nodes_mask(
        window, sim.n_jobs, sim.submit, sim.deadline, sim.estimate, scales.static_jobs,
        sim.now, scales.inv_time, scales.static_nodes, sim.usable, sim.free_cpu,
        sim.free_mem, state.free_gpu_total, scales.inv_cap_cpu, scales.inv_cap_mem,
        scales.inv_cap_gpu, sim.running_count, sim.state, sim.node_of, sim.expected_end,
        float(sim.submit[sim.next_arrival]) if sim.next_arrival < sim.n_jobs else np.inf,
        state.fits, wait_ok, len(sim.waiting),
        sim.next_arrival, horizon, sim.has_future_events(), scales.inv_total_cpu,
        scales.inv_total_gpu, jobs, nodes, mask, glob,
    )  # fmt: skip
    return {"jobs": jobs, "nodes": nodes, "pairs": state.pairs, "global": glob, "action_mask": mask}
