"""EASY backfilling: a reservation for the head job, and which other jobs may jump it.

When the job at the head of the order does not fit anywhere, EASY reserves the earliest
time and node at which it will (from the running jobs' start times and runtime
estimates, the only runtimes a scheduler knows), then lets later jobs start now only if
they cannot delay that reservation: they run on another node, end before the reserved
time, or fit in what the node has to spare at that time after the head job's share.
Resources are checked exactly; device identity is approximated by counts (a backfilled
job is checked against the devices the head job would leave, not a specific device).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worker.sim import devices
from worker.sim.engine import EPS, ClusterSim, device_fits


@dataclass(frozen=True, slots=True)
class Reservation:
    node: int
    shadow_s: float
    """When the head job is expected to fit on `node`."""
    extra_cpu: float
    extra_mem: float
    extra_whole: np.ndarray
    """Wholly free devices per GPU type left at the shadow time once the head job starts."""
    extra_share: np.ndarray
    """Largest free share per GPU type left at the shadow time once the head job starts."""


def _summary(types: np.ndarray, free: np.ndarray, n_types: int) -> tuple[np.ndarray, np.ndarray]:
    whole, share = np.zeros(n_types), np.zeros(n_types)
    devices.summarize(types, free, whole, share)
    return whole, share


def _gpu_type(sim: ClusterSim, job: int, node: int, whole: np.ndarray, share: np.ndarray) -> int:
    """The engine's rule on a hypothetical device state: the fastest allowed type that fits."""
    return devices.fastest_type(sim.allowed[job], sim.speed[node], whole, share, float(sim.gpu[job]))


def _take(sim: ClusterSim, job: int, node: int, free: np.ndarray, gpu_type: int) -> None:
    n_types = sim.cap_gpu.shape[1]
    devices.take(
        sim.dev_type[node], free, gpu_type, float(sim.gpu[job]), np.zeros(n_types), np.zeros(n_types)
    )


def _fits(sim: ClusterSim, job: int, node: int, cpu: float, mem: float, free: np.ndarray) -> int | None:
    """None if the job does not fit these resources, else its GPU type (-1 for CPU jobs)."""
    if sim.cpu[job] > cpu + EPS or sim.mem[job] > mem + EPS:
        return None
    if sim.cpu_only[job]:
        return -1
    whole, share = _summary(sim.dev_type[node], free, sim.cap_gpu.shape[1])
    gpu_type = _gpu_type(sim, job, node, whole, share)
    return None if gpu_type < 0 else gpu_type


def _expected_end(sim: ClusterSim, job: int) -> float:
    gpu_type = sim.type_of[job]
    speed = 1.0 if gpu_type < 0 else float(sim.speed[sim.node_of[job], gpu_type])
    return max(float(sim.start[job] + sim.estimate[job] / speed), sim.now)


def reserve(sim: ClusterSim, job: int) -> Reservation | None:
    """The earliest (time, node) at which `job` fits as running jobs end; None if no usable
    node can ever hold it (for example all such nodes are down)."""
    best: Reservation | None = None
    n_types = sim.cap_gpu.shape[1]
    for node in np.flatnonzero(sim.usable):
        cpu, mem = float(sim.free_cpu[node]), float(sim.free_mem[node])
        free = sim.dev_free[node].copy()
        ends = sorted((_expected_end(sim, j), j) for j in sim.running_on[node])
        shadow, gpu_type = sim.now, _fits(sim, job, node, cpu, mem, free)
        for end, running in ends:
            if gpu_type is not None or (best is not None and end >= best.shadow_s):
                break
            cpu += float(sim.cpu[running])
            mem += float(sim.mem[running])
            devices = sim.job_devices.get(running)
            if devices is not None:
                if sim.gpu[running] >= 1.0 - EPS:
                    free[devices] = sim.dev_cap[node, devices]
                else:
                    free[devices] += float(sim.gpu[running])
            shadow, gpu_type = end, _fits(sim, job, node, cpu, mem, free)
        if gpu_type is None or (best is not None and shadow >= best.shadow_s):
            continue
        if gpu_type >= 0:
            _take(sim, job, int(node), free, gpu_type)
        whole, share = _summary(sim.dev_type[node], free, n_types)
        best = Reservation(
            int(node), shadow, cpu - float(sim.cpu[job]), mem - float(sim.mem[job]), whole, share
        )
    return best


def may_backfill(sim: ClusterSim, reservation: Reservation, job: int, speed: np.ndarray) -> np.ndarray:
    """Nodes on which `job` may start now without delaying the reservation (bool [N]);
    `speed` is the GPU speed the job would get on each node."""
    allowed = np.ones(len(sim.free_cpu), dtype=bool)
    node = reservation.node
    ends_in_time = sim.now + sim.estimate[job] / max(float(speed[node]), 1e-9) <= reservation.shadow_s
    spare = sim.cpu[job] <= reservation.extra_cpu + EPS and sim.mem[job] <= reservation.extra_mem + EPS
    if spare and not sim.cpu_only[job]:
        gpu_ok = sim.allowed[job] & device_fits(
            np.float64(sim.gpu[job]), reservation.extra_whole, reservation.extra_share
        )
        spare = bool(gpu_ok.any())
    allowed[node] = bool(ends_in_time or spare)
    return allowed
