"""Episode metrics, computed from the engine's arrays after (or during) an episode."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from worker.sim.engine import DONE, MIN_RUNTIME_FOR_SLOWDOWN_S, RUNNING, UNSCHEDULABLE, ClusterSim


@dataclass(frozen=True, slots=True)
class EpisodeMetrics:
    score: float
    """Priority-weighted share of schedulable jobs finished by their deadline (headline)."""
    mean_bounded_slowdown: float
    p95_bounded_slowdown: float
    mean_wait: float
    gpu_utilization: float
    cpu_utilization: float
    makespan: float
    jobs_finished: int
    deadline_misses: int
    unschedulable: int
    jobs_total: int
    utilization: float = 0.0
    """GPU utilisation, or CPU utilisation on a cluster without GPUs (the `utilization`
    objective)."""
    gpu_allocated: float = 0.0
    """GPUs of the jobs started and not killed / cluster GPUs: the GPU allocation ratio
    when jobs never leave (the `allocation` objective, FGD's experiment)."""

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def mean(cls, runs: list[EpisodeMetrics]) -> dict[str, float]:
        """Field-wise mean over episodes (counts become floats)."""
        return {f.name: float(np.mean([getattr(r, f.name) for r in runs])) for f in fields(cls)}


def bounded_slowdown(wait: np.ndarray, run: np.ndarray) -> np.ndarray:
    return np.maximum(1.0, (wait + run) / np.maximum(run, MIN_RUNTIME_FOR_SLOWDOWN_S))


def episode_metrics(sim: ClusterSim) -> EpisodeMetrics:
    n = sim.n_jobs
    state = sim.state
    done = state == DONE
    priority = sim.priority[:n]
    submit = sim.submit[:n]
    on_time = done & (sim.finish <= sim.deadline[:n])
    schedulable = sim.schedulable
    score = float(priority[on_time].sum() / sim.total_priority) if schedulable.any() else 0.0

    run = sim.finish[done] - sim.start[done]
    response = sim.finish[done] - submit[done]
    slowdown = bounded_slowdown(response - run, run)
    started = ~np.isnan(sim.start)
    waits = sim.start[started] - submit[started]

    # Jobs still running count towards utilisation up to now.
    running = state == RUNNING
    busy_cpu = sim.busy_cpu_s + float((sim.cpu[:n][running] * (sim.now - sim.start[running])).sum())
    busy_gpu = sim.busy_gpu_s + float((sim.gpu[:n][running] * (sim.now - sim.start[running])).sum())
    first = float(submit.min()) if n else 0.0
    last = float(np.nanmax(sim.finish)) if done.any() else first
    makespan = max(last - first, 0.0)
    total_cpu = float(sim.cap_cpu.sum())
    total_gpu = float(sim.cap_gpu.sum())
    elapsed = max(sim.now - first, makespan, 1e-9)
    gpu_utilization = float(busy_gpu / (total_gpu * elapsed)) if total_gpu else 0.0
    cpu_utilization = float(busy_cpu / (total_cpu * elapsed)) if total_cpu else 0.0
    placed = (state == RUNNING) | done
    gpus = np.where(sim.cpu_only[:n], 0.0, sim.gpu[:n])
    return EpisodeMetrics(
        score=score,
        mean_bounded_slowdown=float(slowdown.mean()) if len(slowdown) else 0.0,
        p95_bounded_slowdown=float(np.percentile(slowdown, 95)) if len(slowdown) else 0.0,
        mean_wait=float(waits.mean()) if len(waits) else 0.0,
        gpu_utilization=gpu_utilization,
        cpu_utilization=cpu_utilization,
        makespan=makespan,
        jobs_finished=int(done.sum()),
        deadline_misses=int((schedulable & ~on_time).sum()),
        unschedulable=int((state == UNSCHEDULABLE).sum() + ((~schedulable) & (state == 0)).sum()),
        jobs_total=n,
        utilization=gpu_utilization if total_gpu else cpu_utilization,
        gpu_allocated=float(gpus[placed].sum() / total_gpu) if total_gpu else 0.0,
    )
