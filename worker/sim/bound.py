"""The empty-cluster bound: how much any scheduler could still win on an episode.

If every job started the moment it arrived on the fastest node that could ever hold it,
no queueing and no contention, a job would meet its deadline exactly when its actual
runtime on that GPU fits in its slack. No policy can do better on any job, so the
priority-weighted share of such jobs bounds the score from above. The gap between the
best heuristic and this bound is what is left to win; a policy's "gap closed" is the
share of it the policy wins.
"""

from __future__ import annotations

import numpy as np

from worker.sim.engine import ClusterSim
from worker.sim.model import Scenario


def fastest_ever(sim: ClusterSim) -> np.ndarray:
    """Per job (and the sentinel), the speed of the fastest GPU type it could run on in
    this cluster: 1.0 for CPU jobs, 0 for jobs that fit no node. Cached on the engine."""
    cached = getattr(sim, "_fastest_ever", None)
    if cached is None:
        jobs = np.arange(sim.n_jobs + 1)
        every = np.ones_like(sim.usable)
        fit = sim.fit(jobs, sim.cap_cpu, sim.cap_mem, sim.cap_whole, sim.cap_share, every)
        cached = np.where(fit.fits, fit.speed, 0.0).max(axis=1, initial=0.0)
        sim._fastest_ever = cached
    return cached


def empty_cluster_bound(scenario: Scenario) -> float:
    """Upper bound on the headline score of `scenario` (see the module docstring)."""
    sim = ClusterSim(scenario, window=1)
    n = sim.n_jobs
    speed = fastest_ever(sim)[:n]
    with np.errstate(divide="ignore"):
        finish = sim.submit[:n] + sim.runtime[:n] / speed
    on_time = sim.schedulable & (speed > 0) & (finish <= sim.deadline[:n])
    return float(sim.priority[:n][on_time].sum() / sim.total_priority) if sim.schedulable.any() else 0.0


def gap_closed(score: float, best_heuristic: float, bound: float) -> float | None:
    """Share of the gap between the best heuristic and the bound that `score` closes
    (negative when it loses to the heuristic); None when there is no gap to close."""
    gap = bound - best_heuristic
    return None if gap <= 1e-12 else (score - best_heuristic) / gap
