"""What a run optimises, the metric that measures it and the reward that pays it.

Every objective's value is "higher is better", so leagues, `tuned` and the training
loop rank by one number: the headline score, minus the mean bounded slowdown, the
utilisation, or the GPU allocation ratio. The engine (and, for utilisation, the env at
the episode's end) pays rewards whose undiscounted sum is exactly that value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from worker.contracts import OBJECTIVES as OBJECTIVE_NAMES
from worker.sim.bound import empty_cluster_bound
from worker.sim.model import Scenario


@dataclass(frozen=True, slots=True)
class Objective:
    name: str
    metric: str
    """The EpisodeMetrics field it is measured by."""
    sign: float
    description: str
    reward: str

    def value(self, metrics: Mapping[str, float]) -> float:
        return self.sign * float(metrics[self.metric])

    def bound(self, scenario: Scenario) -> float | None:
        """The best value any scheduler could reach on `scenario`, if known."""
        if self.name == "deadline":
            return empty_cluster_bound(scenario)
        if self.name == "slowdown":
            return -1.0  # every job started on arrival: bounded slowdown 1
        return None


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective(
            "deadline",
            "score",
            1.0,
            "priority-weighted share of jobs finished by their deadline (the headline score)",
            "a job's priority share when it starts, if it will finish by its deadline; "
            "taken back if a node failure kills it",
        ),
        Objective(
            "slowdown",
            "mean_bounded_slowdown",
            -1.0,
            "mean bounded slowdown, max(1, (wait + run) / max(run, 10)), as RLScheduler",
            "minus the job's bounded slowdown / schedulable jobs when it starts (the engine knows "
            "its runtime); taken back if it is killed and paid again at the restart",
        ),
        Objective(
            "utilization",
            "utilization",
            1.0,
            "GPU utilisation (CPU utilisation on a cluster without GPUs) over the episode",
            "the episode's utilisation, paid once at its end (a ratio over the makespan does not "
            "decompose into per-decision shares)",
        ),
        Objective(
            "allocation",
            "gpu_allocated",
            1.0,
            "GPU allocation ratio: GPUs of started jobs / cluster GPUs, meant for workloads "
            "whose jobs never leave (FGD's inflation experiment)",
            "the job's GPUs / cluster GPUs when it starts; taken back if it is killed",
        ),
    )
}
assert tuple(OBJECTIVES) == OBJECTIVE_NAMES


def get_objective(name: str) -> Objective:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}") from None
