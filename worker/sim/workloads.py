"""Synthetic workload presets and the single entry point that turns a workload name into a
scenario (synthetic preset or real trace).

A preset is a small table of knobs (cluster mix, job size mix, arrival process, deadline
slack, failure rate) so presets differ only where they mean to. Offered load is the
expected dominant-resource demand per second over cluster capacity: 1.0 keeps a perfect
packer exactly busy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worker.contracts import KNOWN_GPU_SPEEDS
from worker.sim.model import Job, Node, NodeFailures, Scenario


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """What a user names: a preset or trace, and the size and load of the episode."""

    name: str = "steady"
    nodes: int = 16
    load: float | None = None
    """Offered load; None keeps the preset's default (or a trace's own arrival times)."""
    jobs: int = 400
    """Jobs per episode: enough that the cluster runs loaded for several job lifetimes."""


@dataclass(frozen=True, slots=True)
class Preset:
    description: str
    default_nodes: int = 16
    default_load: float = 0.95
    p5_node_share: float = 0.5
    cpu_node_share: float = 0.0
    gpus_per_node: int = 8
    cpus_per_node: int = 96
    memory_gb_per_node: float = 1024.0
    gpu_sizes: tuple[tuple[float, float], ...] = (
        (0, 0.15),
        (1, 0.35),
        (2, 0.25),
        (4, 0.15),
        (8, 0.10),
    )
    p5_only_share: float = 0.3
    priority_mix: tuple[float, float, float] = (0.5, 0.3, 0.2)
    median_runtime_s: float = 1800.0
    runtime_sigma: float = 0.7
    estimate_noise_sigma: float = 0.25
    deadline_slack: tuple[float, float] = (1.3, 3.0)
    """Deadline = submit + U(lo, hi) x p5 runtime estimate; below 1/0.6 a p4 GPU misses it."""
    burstiness: float = 0.0
    """Share of arrivals that come in bursts (0 = Poisson)."""
    failures: NodeFailures | None = None


PRESETS: dict[str, Preset] = {
    "seed-demo": Preset(
        "The original demo's shape: a few large p5/p4 nodes, jobs wanting p5 or either.",
        default_nodes=4,
        p5_only_share=0.5,
        gpu_sizes=((1, 0.3), (2, 0.3), (4, 0.25), (8, 0.15)),
    ),
    "steady": Preset("Poisson arrivals, mixed sizes and priorities, moderate deadlines."),
    "bursty": Preset("Arrivals in bursts separated by quiet spells.", burstiness=0.8),
    "deadline-tight": Preset(
        "Deadlines barely above the p5 runtime: GPU type and order decide.",
        deadline_slack=(1.05, 1.8),
        default_load=0.8,
    ),
    "node-failures": Preset(
        "Steady load on nodes that fail and come back; running jobs are requeued.",
        failures=NodeFailures(mean_time_to_failure_s=12 * 3600.0, mean_time_to_repair_s=1800.0),
    ),
}


def workload_names() -> list[str]:
    from worker.sim.traces import TRACE_NAMES

    return [*PRESETS, *TRACE_NAMES, "trace:swf:PATH"]


def make_scenario(spec: WorkloadSpec, seed: int) -> Scenario:
    """The one place a workload name becomes a scenario; raises ValueError if unknown."""
    if spec.name.startswith("trace:"):
        from worker.sim.traces import trace_scenario

        return trace_scenario(spec.name, nodes=spec.nodes, load=spec.load, jobs=spec.jobs, seed=seed)
    preset = PRESETS.get(spec.name)
    if preset is None:
        raise ValueError(f"unknown workload {spec.name!r}; choose one of {', '.join(workload_names())}")
    if spec.nodes < 1 or spec.jobs < 1:
        raise ValueError("a workload needs at least one node and one job")
    return synthetic_scenario(spec.name, preset, spec, seed)


def synthetic_scenario(name: str, preset: Preset, spec: WorkloadSpec, seed: int) -> Scenario:
    rng = np.random.default_rng(seed)
    nodes = _cluster(preset, spec.nodes, rng)
    load = preset.default_load if spec.load is None else spec.load
    if load <= 0:
        raise ValueError(f"load must be positive, got {load}")
    shapes = _job_shapes(preset, spec.jobs, rng)
    work = _dominant_work(shapes, nodes)
    submits = _arrivals(spec.jobs, work / load, preset.burstiness, rng)
    deadlines = submits + rng.uniform(*preset.deadline_slack, size=spec.jobs) * shapes["estimate"]
    # Python scalars up front (tolist): per-element float(np.float64) made this loop half
    # of an env reset.
    jobs = [
        Job(f"job-{i:05d}", cpu, gpu, priority, submit, estimate, run, deadline, mem, ("p5",) if p5 else ())
        for i, (cpu, gpu, priority, submit, estimate, run, deadline, mem, p5) in enumerate(
            zip(
                shapes["cpus"].astype(float).tolist(),
                shapes["gpus"].astype(float).tolist(),
                shapes["priority"].tolist(),
                submits.tolist(),
                shapes["estimate"].tolist(),
                shapes["runtime"].tolist(),
                deadlines.tolist(),
                shapes["memory"].tolist(),
                shapes["p5_only"].tolist(),
                strict=True,
            )
        )
    ]
    span = work / load
    slowest = min(KNOWN_GPU_SPEEDS.values())
    horizon = float(submits[-1] + 3 * span + 3 * max(j.runtime_s for j in jobs) / slowest)
    return Scenario(name, tuple(nodes), tuple(jobs), horizon, preset.failures)


def _cluster(preset: Preset, count: int, rng: np.random.Generator) -> list[Node]:
    n_cpu = round(count * preset.cpu_node_share)
    n_p5 = max(1, round((count - n_cpu) * preset.p5_node_share)) if count - n_cpu else 0
    kinds = ["cpu"] * n_cpu + ["p5"] * n_p5 + ["p4"] * (count - n_cpu - n_p5)
    kinds = list(rng.permutation(kinds))
    nodes = []
    for i, kind in enumerate(kinds):
        gpus = {} if kind == "cpu" else {kind: float(preset.gpus_per_node)}
        speed = {} if kind == "cpu" else {kind: KNOWN_GPU_SPEEDS[kind]}
        nodes.append(
            Node(f"node-{i:03d}", float(preset.cpus_per_node), preset.memory_gb_per_node, gpus, speed)
        )
    return nodes


def _job_shapes(preset: Preset, count: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    sizes = np.array([s for s, _ in preset.gpu_sizes])
    weights = np.array([w for _, w in preset.gpu_sizes])
    gpus = rng.choice(sizes, size=count, p=weights / weights.sum())
    cpus = np.where(gpus > 0, gpus * rng.integers(4, 13, size=count), rng.integers(1, 33, size=count))
    estimate = np.clip(
        rng.lognormal(np.log(preset.median_runtime_s), preset.runtime_sigma, size=count),
        60.0,
        12 * 3600.0,
    )
    return {
        "gpus": gpus,
        "cpus": cpus,
        "memory": cpus * rng.uniform(2.0, 8.0, size=count),
        "priority": rng.choice([1, 2, 3], size=count, p=preset.priority_mix),
        "estimate": estimate,
        "runtime": estimate * rng.lognormal(-0.1, preset.estimate_noise_sigma, size=count),
        "p5_only": (rng.random(count) < preset.p5_only_share) & (gpus > 0),
    }


def _dominant_work(shapes: dict[str, np.ndarray], nodes: list[Node]) -> float:
    """Sum over jobs of dominant share x p5 runtime: cluster-seconds of demand."""
    total_cpu = sum(n.cpus for n in nodes) or 1.0
    # GPU capacity in p5-equivalents: a p4 GPU does 0.6 of a p5's work per second.
    total_gpu = sum(sum(c * n.speed_of(t) for t, c in n.gpus.items()) for n in nodes) or 1.0
    total_mem = sum(n.memory_gb for n in nodes) or 1.0
    share = np.maximum.reduce(
        [shapes["cpus"] / total_cpu, shapes["gpus"] / total_gpu, shapes["memory"] / total_mem]
    )
    return float((share * shapes["runtime"]).sum())


def _arrivals(count: int, span: float, burstiness: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times over about `span` seconds: Poisson, or Poisson plus tight bursts."""
    if count == 1:
        return np.zeros(1)
    gaps = rng.exponential(1.0, size=count)
    if burstiness > 0:
        in_burst = rng.random(count) < burstiness
        gaps = np.where(in_burst, gaps * 0.02, gaps)
    gaps[0] = 0.0
    times = np.cumsum(gaps)
    return times * (span / max(times[-1], 1e-9))
