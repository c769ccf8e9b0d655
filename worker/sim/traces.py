"""Episodes sampled from real workload traces (Alibaba GPU cluster, Standard Workload Format).

Trace names
-----------
- ``trace:alibaba-default`` — every task of ``openb_pod_list_default.csv``.
- ``trace:alibaba-default:train`` — its tasks created before the 70% quantile of creation
  times (the first 70% of the tasks in creation order). Tune and train here.
- ``trace:alibaba-default:heldout`` — the remaining last 30% by creation time.
- ``trace:alibaba-gpuspec33``, ``trace:alibaba-multigpu50`` — held out: evaluation only,
  never for choosing hyper-parameters or reward weights (see the traces README).
- ``trace:swf:PATH`` — a Standard Workload Format file; PATH is absolute, relative to the
  working directory, or relative to :func:`traces_dir` (``trace:swf:swf/lublin_256.swf``).

The split is by task count, not by the raw creation-time span: the default trace is a
snapshot whose oldest survivors (17 long-running services) stretch the span back ~100 days
before the bulk of the tasks, so "the first 70% of the span" would hold only 17 tasks.
Both splits are still disjoint in creation time and the held-out part is the later one.

Alibaba (openb) mapping — every constant below is a modelling assumption
------------------------------------------------------------------------
- Nodes: ``cpus = cpu_milli / 1000``, ``memory_gb = memory_mib / 1024``, one GPU model per
  node. :data:`GPU_SPEEDS` gives relative training throughput per model (V100M32 = 1.0).
  The trace does not publish them and G2/G3 are undisclosed in-house models, so the values
  are plausible guesses from public benchmarks, placed between T4 and V100 for G2/G3.
- Tasks: ``cpus`` and ``memory_gb`` as for nodes; ``gpus = num_gpu``, except that a task with
  ``num_gpu == 1`` and ``gpu_milli < 1000`` asks for ``gpu_milli / 1000`` of one GPU: the
  simulator gives it that share of ONE device (a node's GPUs are devices, see
  :mod:`worker.sim.engine`), as in the FGD paper's GPU-sharing model.
- ``gpu_types`` is ``gpu_spec`` split on ``|`` (duplicates removed); empty means any type.
- ``runtime_s = deletion_time - scheduled_time``, taken as the runtime on a speed-1.0 GPU
  because the trace does not say which model ran the task. Tasks still ``Running`` at the
  end of the snapshot are censored there; every runtime is capped at
  :data:`MAX_RUNTIME_S` (24 h) so a few months-long tasks don't dominate an episode.
- Tasks that never ran (no scheduled or deletion time: the ``Pending`` ones) or whose
  runtime is not positive are skipped and counted: see :func:`trace_stats`. A line that
  cannot be parsed raises :class:`TraceError` naming the file and line.
- Priority by qos: :data:`QOS_PRIORITY` (LS, Guaranteed 3; Burstable 2; BE 1).
- The trace has no runtime estimates: ``runtime_estimate_s = runtime_s x lognormal(0, 0.3)``,
  drawn per episode from the episode's seed.
- The trace has no deadlines: ``deadline_s = submit_s + slack x runtime_estimate_s`` with the
  slack of :data:`QOS_SLACK` (LS 1.5, Guaranteed 2, Burstable 3, BE 5).
- ``openb_pod_list_multigpu50.csv`` has only the resource columns (no qos, no times). Its
  rows whose name appears in the default list are the default list's tasks with the same
  resources, so they take that task's qos and times. The other rows (the added multi-GPU
  tasks) take an arrival time from a random default task and qos, queueing delay and
  runtime from a random runnable default task with the same ``num_gpu`` (fixed seed
  :data:`_DONOR_SEED`, so the parsed file is always the same).

SWF mapping
-----------
A CPU-only cluster: ``nodes`` nodes, each with ``ceil(MaxProcs / nodes)`` CPUs (``MaxNodes``
if the header has no ``MaxProcs``; the largest job if it has neither). Each job runs on one
node, so jobs wider than a node are reported unschedulable by the simulator. Job: ``cpus``
= requested processors (allocated if unknown), ``runtime_s`` = run time,
``runtime_estimate_s`` = requested time (run time if unknown; users over-estimate, which is
the point), priority ``user % 3 + 1`` (2 for an unknown user), ``deadline_s = submit_s +``
:data:`SWF_SLACK` ``x runtime_estimate_s``. Jobs with no positive run time or processor count,
or an unknown submit time, are skipped and counted.

Episode sampling
----------------
Seeded by ``seed`` alone (``numpy.random.default_rng``), so equal arguments give equal
scenarios. Alibaba: ``nodes`` distinct nodes are drawn from the node list, and the tasks
are thinned with keep probability ``p = nodes / len(node list)`` so the episode sees that
share of the real arrival stream. The episode is a run of consecutive tasks (by creation
time) from a random starting task, kept with probability ``p`` until ``jobs`` are kept; the
run is shifted to fit inside the split and only wraps around (with fresh job ids and times
continued one split period later) when the split is too short. The start is uniform over
tasks rather than over time, because the trace's arrivals are far from uniform in time.
SWF: the same with ``p = 1``. Times are shifted so the first submit is 0. If ``load`` is
given the submit times are scaled so :func:`offered_load` equals it. The horizon is the
last submit plus :data:`HORIZON_RUNTIMES` x the longest runtime on the slowest GPU type.
"""

from __future__ import annotations

import csv
import functools
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker.sim.model import Job, Node, Scenario

log = logging.getLogger(__name__)

ALIBABA_DIR = "alibaba-gpu-v2023"
NODE_LIST = "openb_node_list_gpu_node.csv"
DEFAULT_POD_LIST = "openb_pod_list_default.csv"
SWF_PREFIX = "trace:swf:"

_ALIBABA: dict[str, tuple[str, str]] = {
    "trace:alibaba-default": (DEFAULT_POD_LIST, "all"),
    "trace:alibaba-default:train": (DEFAULT_POD_LIST, "train"),
    "trace:alibaba-default:heldout": (DEFAULT_POD_LIST, "heldout"),
    "trace:alibaba-gpuspec33": ("openb_pod_list_gpuspec33.csv", "all"),
    "trace:alibaba-multigpu50": ("openb_pod_list_multigpu50.csv", "all"),
}
LUBLIN_POOL = "trace:lublin-1"
"""RLScheduler's Lublin-1 setting (Zhang et al., SC20) by name: see :func:`pool_scenario`."""
LUBLIN_FILE = "swf/lublin_256.swf"
OPENB_INFLATION = "trace:openb-inflation"
"""FGD's inflation experiment (Weng et al., ATC'23) as a training workload: `nodes` openb
nodes drawn by the seed, the default pod list's training rows (created before its held-out
last 30%) resampled by the seed until they ask for 1.3x their GPUs, pods that never leave
and fail when they fit nowhere on arrival. gpuspec33 and multigpu50 are held out for
evaluation."""
TRACE_NAMES: tuple[str, ...] = (*_ALIBABA, LUBLIN_POOL, OPENB_INFLATION)
"""The fixed trace names; ``trace:swf:PATH`` is accepted as well."""

GPU_SPEEDS: dict[str, float] = {
    "V100M32": 1.0,
    "V100M16": 0.95,
    "G3": 0.9,
    "A10": 0.8,
    "G2": 0.75,
    "P100": 0.55,
    "T4": 0.35,
}
"""Assumed relative throughput per Alibaba GPU model (unknown models get 1.0)."""

QOS_PRIORITY: dict[str, int] = {"LS": 3, "Guaranteed": 3, "Burstable": 2, "BE": 1}
QOS_SLACK: dict[str, float] = {"LS": 1.5, "Guaranteed": 2.0, "Burstable": 3.0, "BE": 5.0}
ESTIMATE_SIGMA = 0.3
TRAIN_FRACTION = 0.7
SWF_SLACK = 2.0
SWF_FIELDS = 18
HORIZON_RUNTIMES = 3.0
MAX_RUNTIME_S = 24 * 3600.0
"""Alibaba runtimes are capped here. About 1.5% of tasks run longer (up to 145 days, most
censored at the snapshot's end); uncapped, one of them holds a node for a whole episode
and makes up most of its offered load, so load scaling would leave the rest idle."""
_DONOR_SEED = 2023

_SPEC_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
_TIME_COLUMNS = ("qos", "creation_time", "deletion_time", "scheduled_time")
_NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
_SWF_NAMES = (
    "job id",
    "submit time",
    "wait time",
    "run time",
    "allocated processors",
    "average CPU time",
    "used memory",
    "requested processors",
    "requested time",
    "requested memory",
    "status",
    "user",
    "group",
    "executable",
    "queue",
    "partition",
    "preceding job",
    "think time",
)


class TraceError(ValueError):
    """A trace that cannot be read: the message names the file and, if any, the line."""


@dataclass(frozen=True, slots=True)
class TraceStats:
    """What a trace name resolves to, for logs, reports and tests."""

    path: Path
    tasks: int
    """Runnable tasks in the named split."""
    skipped: int
    """Well-formed tasks of the whole file that never ran or had no positive runtime."""
    first_submit_s: float
    last_submit_s: float


def traces_dir() -> Path:
    """Where traces live; CI keeps them next to the repository, not inside it."""
    env = os.environ.get("RLSCHED_TRACES_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    candidates = (repo.parent / "shared" / "traces", Path("/work/shared/traces"), repo / "traces")
    return next((c for c in candidates if c.is_dir()), candidates[0])


def is_trace_name(name: str) -> bool:
    return (
        name in _ALIBABA
        or name in (LUBLIN_POOL, OPENB_INFLATION)
        or (name.startswith(SWF_PREFIX) and len(name) > len(SWF_PREFIX))
    )


def trace_scenario(name: str, *, nodes: int, load: float | None, jobs: int, seed: int) -> Scenario:
    """Sample an episode from a real trace. Deterministic for the same arguments."""
    _check_arguments(nodes, load, jobs)
    rng = np.random.default_rng(seed)
    if name == LUBLIN_POOL:
        if nodes != 1 or load is not None:
            raise ValueError(
                f"{LUBLIN_POOL} is RLScheduler's setting: one pool of 256 processors and the trace's "
                "own arrivals; use nodes=1 and no load (for other shapes use trace:swf:swf/lublin_256.swf)"
            )
        n_tasks = len(_swf(traces_dir() / LUBLIN_FILE).tasks.submit)
        return pool_scenario(int(rng.integers(0, max(n_tasks - jobs, 0) + 1)), jobs)
    if name == OPENB_INFLATION:
        return _inflation(nodes, load, rng)
    if name in _ALIBABA:
        pod_list, part = _ALIBABA[name]
        base = traces_dir() / ALIBABA_DIR
        cluster = _node_list(base / NODE_LIST)
        if nodes > cluster.size:
            raise ValueError(f"{name} has {cluster.size} nodes; asked for {nodes}")
        picked = np.sort(rng.choice(cluster.size, size=nodes, replace=False))
        node_records = cluster.nodes(picked)
        tasks = _split(base / pod_list, part)
        keep = nodes / cluster.size
    elif is_trace_name(name):
        trace = _swf(_resolve_swf(name[len(SWF_PREFIX) :]))
        node_records = _swf_cluster(trace.max_procs, nodes)
        tasks = trace.tasks
        keep = 1.0
    else:
        raise _unknown(name)
    return _episode(name, node_records, tasks, keep, load, jobs, rng)


def trace_stats(name: str) -> TraceStats:
    """Size of a named trace and how many of its tasks were skipped as never run."""
    if name in _ALIBABA:
        pod_list, part = _ALIBABA[name]
        path = traces_dir() / ALIBABA_DIR / pod_list
        tasks = _split(path, part)
    elif name == LUBLIN_POOL:
        path = traces_dir() / LUBLIN_FILE
        tasks = _swf(path).tasks
    elif is_trace_name(name):
        path = _resolve_swf(name[len(SWF_PREFIX) :])
        tasks = _swf(path).tasks
    else:
        raise _unknown(name)
    submit = tasks.submit
    first, last = (float(submit[0]), float(submit[-1])) if len(submit) else (0.0, 0.0)
    return TraceStats(path, len(submit), tasks.skipped, first, last)


def pool_scenario(start: int, jobs: int = 1024) -> Scenario:
    """Jobs `start` to `start + jobs` of lublin_256.swf on one pool of its MaxProcs (256)
    processors, as RLScheduler evaluates: a job takes its requested processors of the
    pool, its estimate is the SWF requested time, arrivals are at the trace's own times
    (their F1 order reads the absolute submit time), and there are no deadlines or
    priorities (their metric is the bounded slowdown). Their evaluation runs the sequences
    starting at 0, 1024, ..., 9216."""
    trace = _swf(traces_dir() / LUBLIN_FILE)
    tasks = trace.tasks
    n_tasks = len(tasks.submit)
    if not 0 <= start < n_tasks:
        raise ValueError(f"{LUBLIN_POOL}: start {start} is outside the trace's {n_tasks} jobs")
    index = np.arange(start, min(start + jobs, n_tasks))
    submit = tasks.submit[index]  # not shifted: F1 scores the trace's own submit times
    runtime = tasks.runtime[index]
    records = tuple(
        Job(
            id=tasks.names[i],
            cpus=float(tasks.cpus[i]),
            gpus=0.0,
            priority=1,
            submit_s=float(t),
            runtime_estimate_s=float(tasks.estimate[i]),
            runtime_s=float(run),
            deadline_s=math.inf,
        )
        for i, t, run in zip(index.tolist(), submit.tolist(), runtime.tolist(), strict=True)
    )
    pool = (Node(id="pool", cpus=float(trace.max_procs)),)
    # Even one job at a time, everything ends by the last arrival plus the sum of runtimes.
    horizon = float(submit[-1] + runtime.sum()) + 1.0
    return Scenario(LUBLIN_POOL, pool, records, horizon)


def _inflation(nodes: int, load: float | None, rng: np.random.Generator) -> Scenario:
    from worker.sim.allocation import inflation_scenario

    if load is not None:
        raise ValueError(f"{OPENB_INFLATION} has no time axis: pods arrive until 1.3x capacity; use no load")
    cluster = _node_list(traces_dir() / ALIBABA_DIR / NODE_LIST)
    if nodes > cluster.size:
        raise ValueError(f"{OPENB_INFLATION} has {cluster.size} nodes; asked for {nodes}")
    picked = cluster.nodes(np.sort(rng.choice(cluster.size, size=nodes, replace=False)))
    seed = int(rng.integers(2**31 - 1))
    return inflation_scenario(picked, openb_pod_shapes("default", "train"), seed, OPENB_INFLATION)


def openb_cluster() -> tuple[Node, ...]:
    """Every node of the openb node list (1,213 nodes, 6,212 GPUs)."""
    cluster = _node_list(traces_dir() / ALIBABA_DIR / NODE_LIST)
    return cluster.nodes(np.arange(cluster.size))


def openb_pod_shapes(pod_list: str, part: str = "all") -> list[tuple[float, float, float, tuple[str, ...]]]:
    """(cpus, memory_gb, gpus, gpu_types) of every row of an openb pod list (`default`,
    `gpuspec33` or `multigpu50`), run or not: FGD's allocation experiment places them all.
    `part="train"` keeps the rows created before the default list's held-out last 30%
    (what a training workload may draw from)."""
    path = traces_dir() / ALIBABA_DIR / f"openb_pod_list_{pod_list}.csv"
    rows = _pod_list(path).rows
    if part == "train":
        creation = np.array([r.creation for r in rows], dtype=np.float64)
        if np.isnan(creation).any():
            raise TraceError(f"{path.name} has no creation times to split; only the default list is split")
        cut = _train_cut(creation)
        rows = [r for r in rows if r.creation < cut]
    elif part != "all":
        raise ValueError(f"unknown part {part!r}: all or train")
    return [(r.cpus, r.memory_gb, r.gpus, r.gpu_types) for r in rows]


def _unknown(name: str) -> TraceError:
    valid = ", ".join([*TRACE_NAMES, SWF_PREFIX + "PATH"])
    return TraceError(f"unknown trace {name!r}; valid names: {valid}")


def offered_load(scenario: Scenario) -> float:
    """Dominant-share work per second of arrival window, as the synthetic presets define it.

    Resources the cluster lacks entirely are left out of the dominant share.
    """
    jobs = scenario.jobs
    if len(jobs) < 2:
        return 0.0
    window = jobs[-1].submit_s - jobs[0].submit_s
    totals = _cluster_totals(scenario.nodes)
    demand = np.array([[j.cpus, j.gpus, j.memory_gb] for j in jobs], dtype=np.float64)
    runtime = np.array([j.runtime_s for j in jobs], dtype=np.float64)
    work = float((_dominant_share(demand, totals) * runtime).sum())
    return work / window if window > 0 else math.inf


# --- episode sampling ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tasks:
    """Runnable tasks of one trace (or split) as columns, sorted by submit time."""

    names: list[str]
    cpus: np.ndarray
    memory_gb: np.ndarray
    gpus: np.ndarray
    gpu_types: list[tuple[str, ...]]
    priority: np.ndarray
    slack: np.ndarray
    submit: np.ndarray
    runtime: np.ndarray
    estimate: np.ndarray
    estimate_sigma: float
    skipped: int

    def take(self, mask: np.ndarray) -> _Tasks:
        index = np.flatnonzero(mask)
        return _Tasks(
            [self.names[i] for i in index],
            self.cpus[index],
            self.memory_gb[index],
            self.gpus[index],
            [self.gpu_types[i] for i in index],
            self.priority[index],
            self.slack[index],
            self.submit[index],
            self.runtime[index],
            self.estimate[index],
            self.estimate_sigma,
            self.skipped,
        )


def _check_arguments(nodes: int, load: float | None, jobs: int) -> None:
    if nodes < 1 or jobs < 1:
        raise ValueError(f"a trace episode needs at least one node and one job, got {nodes=}, {jobs=}")
    if load is not None and not load > 0:
        raise ValueError(f"load must be positive, got {load}")


def _episode(
    name: str,
    nodes: tuple[Node, ...],
    tasks: _Tasks,
    keep: float,
    load: float | None,
    jobs: int,
    rng: np.random.Generator,
) -> Scenario:
    if not len(tasks.submit):
        raise TraceError(f"{name}: the trace has no runnable tasks")
    index, lap = _window(len(tasks.submit), jobs, keep, rng)
    submit = tasks.submit[index] + lap * _period(tasks.submit)
    submit = submit - submit[0]
    runtime = tasks.runtime[index]
    if load is not None:
        submit = _rescale(submit, tasks, index, _cluster_totals(nodes), load)
    estimate = tasks.estimate[index]
    if tasks.estimate_sigma > 0:
        estimate = estimate * rng.lognormal(0.0, tasks.estimate_sigma, size=len(index))
    deadline = submit + tasks.slack[index] * estimate
    records = tuple(
        Job(
            id=tasks.names[i] if k == 0 else f"{tasks.names[i]}#{k}",
            cpus=cpus,
            gpus=gpus,
            priority=priority,
            submit_s=t,
            runtime_estimate_s=est,
            runtime_s=run,
            deadline_s=due,
            memory_gb=mem,
            gpu_types=tasks.gpu_types[i],
        )
        for i, k, cpus, gpus, priority, t, est, run, due, mem in zip(
            index.tolist(),
            lap.tolist(),
            tasks.cpus[index].tolist(),
            tasks.gpus[index].tolist(),
            tasks.priority[index].tolist(),
            submit.tolist(),
            estimate.tolist(),
            runtime.tolist(),
            deadline.tolist(),
            tasks.memory_gb[index].tolist(),
            strict=True,
        )
    )
    horizon = float(submit[-1]) + HORIZON_RUNTIMES * float(runtime.max()) / _slowest(nodes)
    return Scenario(name, nodes, records, horizon)


def _window(n_tasks: int, jobs: int, keep: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Task indices and wrap-around laps of a thinned run of consecutive tasks.

    Gaps between kept tasks of a Bernoulli(keep) thinning are geometric, so the run is
    drawn in O(jobs) whatever its length in trace tasks.
    """
    gaps = rng.geometric(keep, size=jobs) if keep < 1 else np.ones(jobs, dtype=np.int64)
    offsets = np.cumsum(gaps) - gaps[0]
    length = int(offsets[-1]) + 1
    high = n_tasks - length + 1 if length <= n_tasks else n_tasks
    position = int(rng.integers(0, high)) + offsets
    return position % n_tasks, position // n_tasks


def _period(submit: np.ndarray) -> float:
    """How far a wrapped-around lap is shifted: the split's span plus one mean gap."""
    span = float(submit[-1] - submit[0])
    return span + (span / (len(submit) - 1) if len(submit) > 1 and span > 0 else 1.0)


def _rescale(
    submit: np.ndarray, tasks: _Tasks, index: np.ndarray, totals: np.ndarray, load: float
) -> np.ndarray:
    window = float(submit[-1])
    if window <= 0:
        log.debug("all %d jobs arrive at once: load %.3g cannot be set", len(submit), load)
        return submit
    demand = np.stack([tasks.cpus[index], tasks.gpus[index], tasks.memory_gb[index]], axis=1)
    work = float((_dominant_share(demand, totals) * tasks.runtime[index]).sum())
    return submit * (work / (load * window))


def _cluster_totals(nodes: tuple[Node, ...]) -> np.ndarray:
    return np.array(
        [
            sum(n.cpus for n in nodes),
            sum(sum(n.gpus.values()) for n in nodes),
            sum(n.memory_gb for n in nodes),
        ],
        dtype=np.float64,
    )


def _dominant_share(demand: np.ndarray, totals: np.ndarray) -> np.ndarray:
    present = totals > 0
    return (demand[:, present] / totals[present]).max(axis=1, initial=0.0)


def _slowest(nodes: tuple[Node, ...]) -> float:
    speeds = [n.speed_of(t) for n in nodes for t in n.gpus]
    return min([1.0, *speeds])


# --- Alibaba -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _NodeList:
    ids: list[str]
    cpus: np.ndarray
    memory_gb: np.ndarray
    gpus: np.ndarray
    models: list[str]

    @property
    def size(self) -> int:
        return len(self.ids)

    def nodes(self, picked: np.ndarray) -> tuple[Node, ...]:
        return tuple(
            Node(
                id=self.ids[i],
                cpus=float(self.cpus[i]),
                memory_gb=float(self.memory_gb[i]),
                gpus={self.models[i]: float(self.gpus[i])} if self.gpus[i] > 0 else {},
                gpu_speed=({self.models[i]: GPU_SPEEDS.get(self.models[i], 1.0)} if self.gpus[i] > 0 else {}),
            )
            for i in picked.tolist()
        )


@functools.lru_cache(maxsize=8)
def _node_list(path: Path) -> _NodeList:
    ids: list[str] = []
    numbers: list[tuple[float, float, float]] = []
    models: list[str] = []
    for line, row in _csv_rows(path, _NODE_COLUMNS):
        cpu = _number(row, "cpu_milli", path, line)
        memory = _number(row, "memory_mib", path, line)
        gpus = _count(row, "gpu", path, line)
        model = row["model"].strip()
        if gpus > 0 and not model:
            raise _at(path, line, "a node with GPUs needs a model")
        ids.append(row["sn"])
        numbers.append((cpu / 1000, memory / 1024, gpus))
        models.append(model)
    if not ids:
        raise TraceError(f"{path}: no nodes")
    unknown = sorted({m for m, g in zip(models, numbers, strict=True) if g[2] > 0} - set(GPU_SPEEDS))
    if unknown:
        log.warning("%s: GPU models %s have no speed in GPU_SPEEDS; using 1.0", path.name, unknown)
    columns = np.array(numbers, dtype=np.float64)
    return _NodeList(ids, columns[:, 0], columns[:, 1], columns[:, 2], models)


@dataclass(frozen=True, slots=True)
class _PodRow:
    name: str
    cpus: float
    memory_gb: float
    gpus: float
    num_gpu: int
    gpu_types: tuple[str, ...]
    qos: str = ""
    creation: float = math.nan
    wait: float = math.nan
    runtime: float = math.nan
    """NaN when the task never ran: a counted skip."""


@dataclass(frozen=True, slots=True)
class _PodList:
    rows: list[_PodRow]
    timed: bool


@functools.lru_cache(maxsize=8)
def _split(path: Path, part: str) -> _Tasks:
    """One split of a pod list; cached because every episode of a run asks for it."""
    rows, creation_all = _pod_rows(path)
    tasks = _tasks_from_rows(rows, skipped=len(creation_all) - len(rows))
    if part == "all":
        return tasks
    cut = _train_cut(creation_all)
    return tasks.take(tasks.submit < cut if part == "train" else tasks.submit >= cut)


def _train_cut(creation: np.ndarray) -> float:
    """The creation time from which a pod list's rows are held out (the last 30%)."""
    return float(np.sort(creation)[int(TRAIN_FRACTION * len(creation))])


def _pod_rows(path: Path) -> tuple[list[_PodRow], np.ndarray]:
    """Runnable rows of a pod list with times, and the creation time of every row."""
    pods = _pod_list(path)
    rows = pods.rows
    if not pods.timed:
        companion = path.with_name(DEFAULT_POD_LIST)
        if companion == path:
            raise TraceError(f"{path}: the default pod list must have qos and time columns")
        rows = _borrow_times(rows, _pod_list(companion).rows, companion)
    runnable = [r for r in rows if not math.isnan(r.runtime)]
    log.debug("%s: %d tasks, %d never ran (skipped)", path.name, len(rows), len(rows) - len(runnable))
    return runnable, np.array([r.creation for r in rows], dtype=np.float64)


@functools.lru_cache(maxsize=8)
def _pod_list(path: Path) -> _PodList:
    header, reader = _csv_header(path, _SPEC_COLUMNS)
    present = [c for c in _TIME_COLUMNS if c in header]
    if present and len(present) < len(_TIME_COLUMNS):
        missing = [c for c in _TIME_COLUMNS if c not in header]
        raise _at(path, 1, f"has {', '.join(present)} but not {', '.join(missing)}")
    timed = bool(present)
    rows = [_pod_row(row, timed, path, line) for line, row in reader]
    return _PodList(rows, timed)


def _pod_row(row: dict[str, str], timed: bool, path: Path, line: int) -> _PodRow:
    num_gpu = _count(row, "num_gpu", path, line)
    milli = _number(row, "gpu_milli", path, line)
    if milli > 1000 or (num_gpu == 1 and milli == 0):
        raise _at(path, line, f"gpu_milli {milli:g} does not fit num_gpu {num_gpu}")
    gpus = milli / 1000 if num_gpu == 1 else float(num_gpu)
    spec = row.get("gpu_spec", "").strip()
    base = _PodRow(
        name=row["name"],
        cpus=_number(row, "cpu_milli", path, line) / 1000,
        memory_gb=_number(row, "memory_mib", path, line) / 1024,
        gpus=gpus,
        num_gpu=num_gpu,
        gpu_types=tuple(dict.fromkeys(t.strip() for t in spec.split("|"))) if spec else (),
    )
    if not timed:
        return base
    qos = row["qos"].strip()
    if qos not in QOS_PRIORITY:
        raise _at(path, line, f"unknown qos {qos!r} (known: {', '.join(QOS_PRIORITY)})")
    creation = _number(row, "creation_time", path, line)
    scheduled = _optional_number(row, "scheduled_time", path, line)
    deletion = _optional_number(row, "deletion_time", path, line)
    runtime = deletion - scheduled
    return _replace_times(
        base,
        qos,
        creation,
        scheduled - creation,
        runtime if runtime > 0 else math.nan,
    )


def _replace_times(row: _PodRow, qos: str, creation: float, wait: float, runtime: float) -> _PodRow:
    return _PodRow(
        row.name,
        row.cpus,
        row.memory_gb,
        row.gpus,
        row.num_gpu,
        row.gpu_types,
        qos,
        creation,
        wait,
        runtime,
    )


def _borrow_times(rows: list[_PodRow], donors: list[_PodRow], companion: Path) -> list[_PodRow]:
    """Times and qos for a pod list that has only resource columns (see module docstring)."""
    by_name = {d.name: d for d in donors}
    runnable = [d for d in donors if not math.isnan(d.runtime)]
    if not runnable:
        raise TraceError(f"{companion}: no runnable tasks to borrow times from")
    by_gpus: dict[int, list[_PodRow]] = {}
    for d in runnable:
        by_gpus.setdefault(d.num_gpu, []).append(d)
    rng = np.random.default_rng(_DONOR_SEED)
    out = []
    for row in rows:
        same = by_name.get(row.name)
        if same is not None:
            out.append(_replace_times(row, same.qos, same.creation, same.wait, same.runtime))
            continue
        arrival = donors[int(rng.integers(len(donors)))].creation
        pool = by_gpus.get(row.num_gpu, runnable)
        donor = pool[int(rng.integers(len(pool)))]
        out.append(_replace_times(row, donor.qos, arrival, donor.wait, donor.runtime))
    return out


def _tasks_from_rows(rows: list[_PodRow], skipped: int) -> _Tasks:
    order = sorted(range(len(rows)), key=lambda i: rows[i].creation)
    rows = [rows[i] for i in order]
    runtime = np.minimum(np.array([r.runtime for r in rows], dtype=np.float64), MAX_RUNTIME_S)
    return _Tasks(
        names=[r.name for r in rows],
        cpus=np.array([r.cpus for r in rows], dtype=np.float64),
        memory_gb=np.array([r.memory_gb for r in rows], dtype=np.float64),
        gpus=np.array([r.gpus for r in rows], dtype=np.float64),
        gpu_types=[r.gpu_types for r in rows],
        priority=np.array([QOS_PRIORITY[r.qos] for r in rows], dtype=np.int64),
        slack=np.array([QOS_SLACK[r.qos] for r in rows], dtype=np.float64),
        submit=np.array([r.creation for r in rows], dtype=np.float64),
        runtime=runtime,
        estimate=runtime,
        estimate_sigma=ESTIMATE_SIGMA,
        skipped=skipped,
    )


# --- CSV helpers ---------------------------------------------------------------------------


def _csv_header(
    path: Path, required: tuple[str, ...]
) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header and a lazy reader of (1-based line, row) for a CSV with `required` columns."""
    text = _read_text(path)
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise _at(path, 1, f"missing column(s) {', '.join(missing)}")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for values in reader:
            if not values or values == [""]:
                continue
            if len(values) != len(header):
                raise _at(path, reader.line_num, f"expected {len(header)} fields, got {len(values)}")
            yield reader.line_num, dict(zip(header, values, strict=True))

    return header, rows()


def _csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    return _csv_header(path, required)[1]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TraceError(f"trace file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"cannot read trace file {path}: {exc}") from exc


def _at(path: Path, line: int, message: str) -> TraceError:
    return TraceError(f"{path.name} line {line}: {message}")


def _number(row: dict[str, str], column: str, path: Path, line: int) -> float:
    text = row[column].strip()
    try:
        value = float(text)
    except ValueError:
        raise _at(path, line, f"{column} is not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise _at(path, line, f"{column} must be a finite number >= 0: {text!r}")
    return value


def _optional_number(row: dict[str, str], column: str, path: Path, line: int) -> float:
    """A time that may be empty because the task never got that far (NaN then)."""
    return math.nan if not row[column].strip() else _number(row, column, path, line)


def _count(row: dict[str, str], column: str, path: Path, line: int) -> int:
    value = _number(row, column, path, line)
    if value != int(value):
        raise _at(path, line, f"{column} is not a whole number: {row[column]!r}")
    return int(value)


# --- SWF -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SwfTrace:
    tasks: _Tasks
    max_procs: int


def _resolve_swf(text: str) -> Path:
    given = Path(text)
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, traces_dir() / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise TraceError(f"SWF trace file not found: {text} (tried {tried})")


def _swf_cluster(max_procs: int, nodes: int) -> tuple[Node, ...]:
    cpus = float(math.ceil(max_procs / nodes))
    return tuple(Node(id=f"swf-node-{i:03d}", cpus=cpus) for i in range(nodes))


@functools.lru_cache(maxsize=8)
def _swf(path: Path) -> _SwfTrace:
    header: dict[str, int] = {}
    records: list[list[float]] = []
    skipped = 0
    for line, text in enumerate(_read_text(path).splitlines(), start=1):
        stripped = text.strip()
        if not stripped:
            continue
        if stripped.startswith(";"):
            _swf_header(stripped, header, path, line)
            continue
        fields = _swf_fields(stripped, path, line)
        submit, run, procs = fields[1], fields[3], fields[7] if fields[7] > 0 else fields[4]
        if run <= 0 or procs <= 0 or submit < 0:
            skipped += 1
            continue
        records.append(fields)
    log.debug(
        "%s: %d jobs, %d skipped (no run time, processors or submit time)",
        path.name,
        len(records),
        skipped,
    )
    table = np.array(records, dtype=np.float64).reshape(-1, SWF_FIELDS)
    max_procs = header.get("MaxProcs") or header.get("MaxNodes") or _widest(table)
    return _SwfTrace(_swf_tasks(table, skipped), max_procs)


def _swf_header(text: str, header: dict[str, int], path: Path, line: int) -> None:
    key, sep, value = text.lstrip(";").partition(":")
    key = key.strip()
    if not sep or key not in ("MaxProcs", "MaxNodes"):
        return
    try:
        number = int(value.strip())
    except ValueError:
        raise _at(path, line, f"{key} is not a whole number: {value.strip()!r}") from None
    if number > 0:
        header[key] = number


def _swf_fields(text: str, path: Path, line: int) -> list[float]:
    parts = text.split()
    if len(parts) != SWF_FIELDS:
        raise _at(path, line, f"expected {SWF_FIELDS} fields, got {len(parts)}")
    values = []
    for i, part in enumerate(parts):
        try:
            value = float(part)
        except ValueError:
            raise _at(path, line, f"field {i + 1} ({_SWF_NAMES[i]}) is not a number: {part!r}") from None
        if not math.isfinite(value):
            raise _at(path, line, f"field {i + 1} ({_SWF_NAMES[i]}) is not finite: {part!r}")
        values.append(value)
    return values


def _widest(table: np.ndarray) -> int:
    procs = np.where(table[:, 7] > 0, table[:, 7], table[:, 4])
    return int(procs.max()) if len(procs) else 1


def _swf_tasks(table: np.ndarray, skipped: int) -> _Tasks:
    table = table[np.argsort(table[:, 1], kind="stable")]
    runtime = table[:, 3]
    estimate = np.where(table[:, 8] > 0, table[:, 8], runtime)
    user = table[:, 11].astype(np.int64)
    n = len(table)
    return _Tasks(
        names=[f"swf-{int(j)}" for j in table[:, 0]],
        cpus=np.where(table[:, 7] > 0, table[:, 7], table[:, 4]),
        memory_gb=np.zeros(n),
        gpus=np.zeros(n),
        gpu_types=[()] * n,
        priority=np.where(user >= 0, user % 3 + 1, 2),
        slack=np.full(n, SWF_SLACK),
        submit=table[:, 1].copy(),
        runtime=runtime.copy(),
        estimate=estimate,
        estimate_sigma=0.0,
        skipped=skipped,
    )
