"""GPU fragmentation as FGD measures it (Weng et al., ATC'23), on our device model.

A node's fragmentation is the GPU capacity it has free that the workload's typical job
shapes cannot use, weighted by how common each shape is. For one shape:
- a CPU-only job, a job the node's GPU types cannot serve, a job for which the node
  lacks CPUs, or one whose GPUs no set of free devices can hold: every free GPU share
  on the node counts as fragment (FGD's Q1, Q2, Q4, XL, XR and no-access cases);
- a job the node can host: only the free shares of devices too small for its per-device
  need count (Q3's "lack GPU" part).
The `fgd` placement puts a job where this expected fragmentation grows least. Read from
FGD's `pkg/utils/frag.go` (`NodeGpuShareFragAmountScore`); typical shapes are the most
common (cpus, per-device share, devices, allowed types) of the workload's jobs covering
`COVERAGE` of them (in steps of `STEP` shapes), renormalised, like their
`GetTypicalPods` with CPU jobs included.

`leftover` (what each node would have free after taking a job) is the other half of a
packing decision, shared by the heuristics' placements and FGD's placers (allocation.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from worker.sim.devices import EPS
from worker.sim.engine import ClusterSim

COVERAGE = 0.95
"""Share of jobs the typical shapes must cover, adding the next `STEP` most common shapes
at a time: what FGD's experiment scripts set (95%, step 1), not the Go fallback (60%, 10)."""
STEP = 1


@dataclass(frozen=True, slots=True)
class ShapeTable:
    cpus: np.ndarray
    share: np.ndarray
    """Free share each device must have: the job's GPUs if below one, else 1 (0: CPU job)."""
    devices: np.ndarray
    """Devices a job of this shape takes (0: CPU job)."""
    allowed: np.ndarray
    """[S, T] GPU types the shape may use."""
    weight: np.ndarray
    """Popularity, summing to one."""

    @classmethod
    def from_jobs(
        cls, sim: ClusterSim, jobs: Sequence[int] | np.ndarray | None = None, coverage: float = COVERAGE
    ) -> ShapeTable:
        """Typical shapes of `jobs` (default: every job of the engine's scenario), most
        common first, ties in order of first appearance. Vectorised: a search builds one
        from the jobs submitted so far at every decision."""
        index = np.arange(sim.n_jobs) if jobs is None else np.asarray(jobs, dtype=np.int64)
        cpu = sim.cpu[index]
        gpu = np.round(np.where(sim.cpu_only[index], 0.0, sim.gpu[index]), 6)
        allowed = sim.allowed[index]
        types = allowed @ (1 << np.arange(allowed.shape[1], dtype=np.int64))
        order = np.lexsort((types, gpu, cpu))  # stable: a shape's first job leads its run
        new_shape = np.ones(len(order), dtype=np.bool_)
        new_shape[1:] = (np.diff(cpu[order]) != 0) | (np.diff(gpu[order]) != 0) | (np.diff(types[order]) != 0)
        starts = np.flatnonzero(new_shape)
        counts = np.diff(np.append(starts, len(order)))
        first = order[starts]
        ranked = np.lexsort((first, -counts))
        covered = np.cumsum(counts[ranked])
        size = 0
        while size < len(ranked) and (covered[size - 1] if size else 0) < coverage * len(index):
            size += STEP
        kept = first[ranked[:size]]
        gpus = gpu[kept]
        weight = counts[ranked[:size]].astype(np.float64)
        return cls(
            cpus=cpu[kept],
            share=np.where(gpus <= 0, 0.0, np.minimum(gpus, 1.0)),
            devices=np.where(gpus <= 0, 0, np.where(gpus < 1.0 - EPS, 1, np.ceil(gpus - EPS))).astype(
                np.int64
            ),
            allowed=allowed[kept],
            weight=weight / max(weight.sum(), 1e-12),
        )


@numba.njit(cache=True, nogil=True)
def _node_fragment(free_cpu: float, types: np.ndarray, free: np.ndarray, table: tuple) -> float:
    cpus, share, devices, allowed, weight = table
    total = 0.0
    for d in range(types.shape[0]):
        if types[d] >= 0:
            total += free[d]
    if total <= EPS:
        return 0.0
    fragment = 0.0
    for s in range(cpus.shape[0]):
        if devices[s] == 0 or cpus[s] > free_cpu + EPS:
            fragment += weight[s] * total
            continue
        usable, small = 0, 0.0
        for d in range(types.shape[0]):
            t = types[d]
            if t < 0:
                continue
            if allowed[s, t] and free[d] >= share[s] - EPS:
                usable += 1
            else:
                small += free[d]
        fragment += weight[s] * (small if usable >= devices[s] else total)
    return fragment


@numba.njit(cache=True, nogil=True)
def _deltas(
    cpu: float,
    need: float,
    allowed: np.ndarray,
    speed: np.ndarray,
    free_cpu: np.ndarray,
    dev_type: np.ndarray,
    dev_free: np.ndarray,
    candidates: np.ndarray,
    table: tuple,
    out: np.ndarray,
    out_device: np.ndarray,
) -> None:
    whole = need >= 1.0 - EPS
    count = math.ceil(need - EPS) if whole else 1
    for n in range(free_cpu.shape[0]):
        if not candidates[n]:
            out[n] = np.inf
            continue
        types, free = dev_type[n], dev_free[n]
        before = _node_fragment(free_cpu[n], types, free, table)
        after_free = free.copy()
        if need > 0.0:
            # The engine's choice: the fastest allowed type that fits, then best-fit devices.
            best_t, best_speed = -1, 0.0
            for t in range(allowed.shape[0]):
                if not allowed[t] or speed[n, t] <= best_speed:
                    continue
                fit = 0
                for d in range(types.shape[0]):
                    if types[d] == t and free[d] >= (1.0 if whole else need) - EPS:
                        fit += 1
                if fit >= count:
                    best_t, best_speed = t, speed[n, t]
            if whole:
                taken = 0
                for d in range(types.shape[0]):
                    if taken < count and types[d] == best_t and after_free[d] >= 1.0 - EPS:
                        after_free[d] = 0.0
                        taken += 1
            else:
                # FGD's device for a fractional job: the one that fragments least.
                best, pick = np.inf, -1
                for d in range(types.shape[0]):
                    if types[d] == best_t and after_free[d] >= need - EPS:
                        after_free[d] -= need
                        frag = _node_fragment(free_cpu[n] - cpu, types, after_free, table)
                        after_free[d] += need
                        if frag < best:
                            best, pick = frag, d
                out[n] = best - before
                out_device[n] = pick
                continue
        out[n] = _node_fragment(free_cpu[n] - cpu, types, after_free, table) - before
        out_device[n] = -1


def fragmentation_choice(
    sim: ClusterSim, job: int, candidates: np.ndarray, table: ShapeTable
) -> tuple[np.ndarray, np.ndarray]:
    """Per node, how much the expected fragmentation grows if `job` starts there (inf for
    nodes that are not candidates), and for a fractional job the device that fragments
    least there (-1: the engine's choice)."""
    out = np.empty(len(sim.free_cpu))
    out_device = np.full(len(sim.free_cpu), -1, dtype=np.int64)
    need = 0.0 if sim.cpu_only[job] else float(sim.gpu[job])
    shapes = (table.cpus, table.share, table.devices, table.allowed, table.weight)
    _deltas(float(sim.cpu[job]), need, sim.allowed[job], sim.speed, sim.free_cpu, sim.dev_type,
            sim.dev_free, np.ascontiguousarray(candidates), shapes, out, out_device)  # fmt: skip
    return out, out_device


def fragmentation_delta(sim: ClusterSim, job: int, candidates: np.ndarray, table: ShapeTable) -> np.ndarray:
    """Per node, how much the expected fragmentation grows if `job` starts there."""
    return fragmentation_choice(sim, job, candidates, table)[0]


def fgd_choice(sim: ClusterSim, job: int, candidates: np.ndarray, table: ShapeTable) -> tuple[int, int]:
    """FGD's node for `job` and, for a fractional job, FGD's device on it (-1: the
    engine's choice). Scored as their plugin does, `int(sigmoid(-delta) x 100)`, so
    changes under ~0.04 GPU tie, and ties go to the lowest-index node (their scheduler's
    lexicographic tie-break)."""
    delta, device = fragmentation_choice(sim, job, candidates, table)
    score = np.where(candidates, np.floor(100.0 / (1.0 + np.exp(np.clip(delta, -50.0, 50.0)))), -1.0)
    node = int(np.argmax(score))
    return node, int(device[node])


def fgd_device(sim: ClusterSim, job: int, node: int, table: ShapeTable) -> int:
    """The device of `node` on which a fractional `job` fragments least (-1 for other
    jobs: the engine's choice), so any policy that picks the node places like FGD."""
    if sim.cpu_only[job] or sim.gpu[job] >= 1.0 - EPS:
        return -1
    only = np.zeros(len(sim.free_cpu), dtype=np.bool_)
    only[node] = True
    return int(fragmentation_choice(sim, job, only, table)[1][node])


def shape_table(sim: ClusterSim) -> ShapeTable:
    """The scenario's typical shapes, built once per engine (every FGD decision reads them)."""
    table = getattr(sim, "_shape_table", None)
    if table is None:
        table = sim._shape_table = ShapeTable.from_jobs(sim)
    return table


@dataclass(frozen=True, slots=True)
class Leftover:
    """What each node would have free after taking the job, as shares of its capacity."""

    cpu: np.ndarray
    mem: np.ndarray
    gpu: np.ndarray
    has_gpu: np.ndarray
    has_mem: np.ndarray


def leftover(sim: ClusterSim, job: int) -> Leftover:
    cap_gpu = sim.cap_gpu.sum(axis=1)
    need_gpu = 0.0 if sim.cpu_only[job] else float(sim.gpu[job])

    def share(free: np.ndarray, cap: np.ndarray, need: float) -> np.ndarray:
        return np.where(cap > 0, (free - need) / np.maximum(cap, 1e-9), 0.0)

    return Leftover(
        cpu=share(sim.free_cpu, sim.cap_cpu, float(sim.cpu[job])),
        mem=share(sim.free_mem, sim.cap_mem, float(sim.mem[job])),
        gpu=share(sim.free_gpu.sum(axis=1), cap_gpu, need_gpu),
        has_gpu=cap_gpu > 0,
        has_mem=sim.cap_mem > 0,
    )
