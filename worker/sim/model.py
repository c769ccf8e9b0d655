"""Typed records for what enters the simulator: nodes, jobs and a whole scenario.

These are the edges of the simulator (generators, trace readers, API requests). Inside
an episode the engine copies them into numpy arrays once and never touches them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from worker.contracts import KNOWN_GPU_SPEEDS


class NodeStatus(StrEnum):
    OK = "OK"
    BUSY = "BUSY"
    DOWN = "DOWN"


@dataclass(frozen=True, slots=True)
class Node:
    """A machine. It may hold GPUs of several types; a job uses one type on one node."""

    id: str
    cpus: float
    memory_gb: float = 0.0
    gpus: dict[str, float] = field(default_factory=dict)
    gpu_speed: dict[str, float] = field(default_factory=dict)
    status: NodeStatus = NodeStatus.OK

    def speed_of(self, gpu_type: str) -> float:
        """The node's own speed for the type, else the known one (the API's list, so a
        request and the simulator agree): a job's runtime there is its p5 runtime / speed."""
        return self.gpu_speed.get(gpu_type, KNOWN_GPU_SPEEDS.get(gpu_type, 1.0))


@dataclass(frozen=True, slots=True)
class Job:
    """A unit of work. Times are seconds; runtimes are on a speed-1.0 GPU (or a CPU).

    `gpu_types` lists the GPU types the job may run on; empty means any type. A job with
    `gpus == 0` is CPU-only and ignores `gpu_types`. `runtime_s` is what the job really
    takes (unknown to policies); `runtime_estimate_s` is what the user said.
    Fractional `gpus` (< 1) model GPU sharing as in the Alibaba trace.
    """

    id: str
    cpus: float
    gpus: float
    priority: int
    submit_s: float
    runtime_estimate_s: float
    runtime_s: float
    deadline_s: float
    memory_gb: float = 0.0
    gpu_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeFailures:
    """Exponential time-to-failure and time-to-repair per node, for fault scenarios."""

    mean_time_to_failure_s: float
    mean_time_to_repair_s: float


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything one episode needs: the cluster, the jobs in submit order, the horizon."""

    name: str
    nodes: tuple[Node, ...]
    jobs: tuple[Job, ...]
    horizon_s: float
    failures: NodeFailures | None = None
    placement_only: bool = False
    """Jobs never wait: one that fits nowhere when it arrives fails (FGD's inflation
    experiment, where pods never leave and only placement is judged)."""

    declared_gpu_types: tuple[str, ...] = ()
    """GPU types indexed first, in this order, whether or not a node has them or a job
    names them: a search's belief keeps the type indices of the engine it copies."""

    @property
    def gpu_types(self) -> tuple[str, ...]:
        """Every GPU type on a node or named by a job, in a stable order."""
        seen: dict[str, None] = dict.fromkeys(self.declared_gpu_types)
        for node in self.nodes:
            seen.update(dict.fromkeys(node.gpus))
        seen.update(dict.fromkeys(t for job in self.jobs for t in job.gpu_types))
        return tuple(seen)
