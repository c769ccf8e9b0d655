"""A belief: the engine a search may roll out on, built from what a scheduler knows.

A real scheduler knows its nodes and their free resources now, the jobs submitted so
far (sizes, priorities, deadlines, runtime estimates) and when each running job started.
It does not know actual runtimes, when a node will fail, or what will arrive next. So
the belief is a fresh engine over a fresh scenario made of those known values only:

- every runtime is its estimate; a running job ends at start + estimate / speed, and one
  already past that is taken to end now (or, with `runtimes: calibrated`, every estimate
  is scaled by the median runtime / estimate ratio of the jobs finished so far, which a
  scheduler has seen end; with `runtimes: sampled` the ratios are resampled from them);
- no node failures (a node that is down now stays down);
- future arrivals are none, or jobs sampled from the workload's own generator on seeds
  no evaluation uses.

Jobs already finished are left out of the belief (they decide nothing and only slow
every rollout down), and so are running jobs that will not end before the belief's
horizon (their resources stay taken: the pods of FGD's inflation experiment, which never
leave, would otherwise make every belief as large as the episode). FGD's typical job
shapes are those of the jobs submitted so far.

`build_belief` reads the real engine once and keeps no reference to it or to its
scenario, except what its nodes are (their tables, configuration shared rather than
rebuilt: `ClusterSim(cluster=...)`): the episode's actual runtimes, failures and
arrivals are unreachable from the search (tests/search/test_search_leak.py poisons them
and checks the decisions).
"""

from __future__ import annotations

import bisect
import itertools

import numpy as np

from worker.sim.engine import DONE, RUNNING, WAITING, ClusterSim
from worker.sim.fragmentation import ShapeTable
from worker.sim.model import Job, Scenario

FUTURES_SEED_OFFSET = 2**40
"""Sampled futures come from seeds from here on: disjoint from evaluation seeds (uint32)
and from the training, tuning, validation and selection ranges (2**32 to 2**32 + 2**31 + 2**30 + ...)."""

_KNOWN_STATE = (
    "state", "start", "finish", "node_of", "expected_end", "type_of",
)  # fmt: skip
"""Per submitted job: what happened to it so far (never its actual runtime)."""
_KNOWN_RESOURCES = (
    "free_cpu", "free_mem", "free_gpu", "dev_free", "whole_free", "max_share", "usable", "running_count",
)  # fmt: skip


def _known_jobs(sim: ClusterSim, alive: np.ndarray) -> list[Job]:
    """The submitted jobs still waiting or running, with runtime = estimate, in submit order."""
    all_types = sim.allowed[alive].all(axis=1)
    types = sim.gpu_types
    return [
        Job(
            sim.job_ids[j],
            cpu,
            gpu,
            int(priority),
            submit,
            estimate,
            estimate,
            deadline,
            mem,
            () if all_types[i] else tuple(t for n, t in enumerate(types) if sim.allowed[j, n]),
        )
        for i, (j, cpu, gpu, priority, submit, estimate, deadline, mem) in enumerate(
            zip(
                alive.tolist(),
                sim.cpu[alive].tolist(),
                sim.gpu[alive].tolist(),
                sim.priority[alive].tolist(),
                sim.submit[alive].tolist(),
                sim.estimate[alive].tolist(),
                sim.deadline[alive].tolist(),
                sim.mem[alive].tolist(),
                strict=True,
            )
        )
    ]


def future_jobs(
    sample: Scenario, now: float, gpu_types: tuple[str, ...], limit: int | None = None, origin: float = 0.0
) -> list[Job]:
    """A sampled episode's arrivals after `now` (the first `limit` of them if given), as the
    belief's future (runtime = estimate, renamed so they never collide with a real job's
    id). The sample's clock starts at its first arrival, put at `origin`, the episode's own
    first arrival: a trace window keeps the trace's absolute times (RLScheduler's Lublin
    sequences), so windows drawn elsewhere in the file would otherwise arrive all at once
    or never; every other workload starts at 0. GPU types the cluster does not know are
    dropped from a job's list, and a job left with none is left out: it could never run."""
    known = set(gpu_types)
    jobs: list[Job] = []
    shift = origin - sample.jobs[0].submit_s if sample.jobs else 0.0
    first = bisect.bisect_right(sample.jobs, now - shift, key=lambda j: j.submit_s)
    for j in itertools.islice(sample.jobs, first, None):
        if limit is not None and len(jobs) >= limit:
            break
        types = tuple(t for t in j.gpu_types if t in known)
        if j.gpu_types and not types:
            continue
        estimate = j.runtime_estimate_s
        submit, deadline = j.submit_s + shift, j.deadline_s + shift
        jobs.append(
            Job(
                f"future-{j.id}",
                j.cpus,
                j.gpus,
                j.priority,
                submit,
                estimate,
                estimate,
                deadline,
                j.memory_gb,
                types,
            )
        )
    return jobs


def known_shapes(sim: ClusterSim) -> ShapeTable:
    """FGD's typical job shapes as a scheduler knows them: those of the jobs submitted so far."""
    return ShapeTable.from_jobs(sim, np.arange(sim.next_arrival))


MIN_HISTORY = 10
"""Finished jobs needed before their runtime / estimate ratios stand for the error model."""


def estimate_errors(sim: ClusterSim) -> np.ndarray:
    """Actual / estimated runtime of the jobs finished so far: a scheduler sees when a job
    it started ends, so this is known (from start and finish times, never `runtime`)."""
    done = np.flatnonzero(sim.state == DONE)
    speed = np.ones(len(done))
    on_gpu = done[sim.type_of[done] >= 0]  # none on a cluster without GPUs (RLScheduler's pool)
    speed[sim.type_of[done] >= 0] = sim.speed[sim.node_of[on_gpu], sim.type_of[on_gpu]]
    estimate = np.maximum(sim.estimate[done], 1e-9)
    return (sim.finish[done] - sim.start[done]) * speed / estimate


def calibrated_factors(sim: ClusterSim) -> np.ndarray | None:
    """Runtime / estimate for every submitted job as the episode's finished jobs say it
    typically is: their median ratio; a running job's is the median of the ratios it has
    not outlived yet (none left: it ends now). None (runtimes = estimates) while the
    history is short. One deterministic belief, where `runtime_factors` samples many."""
    errors = estimate_errors(sim)
    if len(errors) < MIN_HISTORY:
        return None
    k = sim.next_arrival
    factors = np.full(k, float(np.median(errors)))
    running = np.flatnonzero(sim.state[:k] == RUNNING)
    elapsed = sim.now - sim.start[running]
    planned = np.maximum(sim.expected_end[running] - sim.start[running], 1e-9)
    for job, outlived in zip(running.tolist(), (elapsed / planned).tolist(), strict=True):
        alive = errors[errors > outlived]
        factors[job] = float(np.median(alive)) if len(alive) else outlived
    return factors


def runtime_factors(sim: ClusterSim, rng: np.random.Generator, count: int) -> list[np.ndarray | None]:
    """`count` draws of runtime / estimate for every submitted job, resampled from the
    episode's finished jobs; a running job's draw is conditioned on it not having ended
    yet (none left: it ends now). None (runtimes = estimates) while the history is short."""
    errors = estimate_errors(sim)
    if len(errors) < MIN_HISTORY:
        return [None] * count
    k = sim.next_arrival
    running = np.flatnonzero(sim.state[:k] == RUNNING)
    elapsed = sim.now - sim.start[running]
    planned = np.maximum(sim.expected_end[running] - sim.start[running], 1e-9)
    draws = []
    for _ in range(count):
        factors = rng.choice(errors, size=k)
        for i, job in enumerate(running):
            alive = errors[errors * planned[i] > elapsed[i]]
            factors[job] = rng.choice(alive) if len(alive) else elapsed[i] / planned[i]
        draws.append(factors)
    return draws


class BeliefEngine(ClusterSim):
    """The engine of a belief. Its episode is over once nothing is left to decide (no job
    waiting, none to arrive): in a belief without failures every reward but utilisation's
    is paid when a job starts, so playing the last completions out (most of a rollout's
    time) would change no value."""

    alive: np.ndarray
    """The real engine's index of each of the belief's submitted jobs (sorted)."""

    def index_of(self, job: int) -> int:
        """The belief's index of the real engine's (waiting or running) job `job`."""
        return int(np.searchsorted(self.alive, job))

    @property
    def done(self) -> bool:
        if self.objective == "utilization":
            return super().done
        return self.next_arrival >= self.n_jobs and not self.waiting


def sampled_runtimes(belief: BeliefEngine, factors: np.ndarray) -> tuple[np.ndarray, dict[int, float]]:
    """The belief's runtimes, and its running jobs' ends (belief index -> time), when
    runtime / estimate is `factors` (one per submitted job of the real engine)."""
    m = len(belief.alive)
    drawn = factors[belief.alive]
    runtime = belief.runtime.copy()
    runtime[:m] = belief.estimate[:m] * drawn
    running = np.flatnonzero(belief.state[:m] == RUNNING)
    started = belief.start[running]
    ends = np.maximum(started + (belief.expected_end[running] - started) * drawn[running], belief.now)
    return runtime, dict(zip(running.tolist(), ends.tolist(), strict=True))


def build_belief(
    sim: ClusterSim,
    futures: list[Job] | None = None,
    factors: np.ndarray | None = None,
    shapes: ShapeTable | None = None,
) -> BeliefEngine:
    """A new engine at `sim`'s decision point that knows only what a scheduler knows (see
    the module docstring); `futures` are sampled arrivals after now, sorted by submit time;
    `factors` (runtime / estimate per submitted job) replace the estimates as the belief's
    runtimes, while what the policies read as expected ends stays the estimates'. A caller
    building several beliefs at one decision passes the `shapes` they share (`known_shapes`).

    Rewards are in raw units (total priority and schedulable count 1): the belief's job set
    is not the episode's, and a search compares candidates in priority points."""
    k = sim.next_arrival
    now = float(sim.now)
    horizon = float(sim.scenario.horizon_s)
    state = sim.state[:k]
    running = np.flatnonzero(state == RUNNING)
    ends = np.maximum(sim.expected_end[running], now)
    if factors is not None:
        started = sim.start[running]
        ends = np.maximum(started + (sim.expected_end[running] - started) * factors[running], now)
    lasting = np.zeros(k, dtype=np.bool_)
    if sim.objective != "utilization":  # utilisation is paid from every running job's time
        lasting[running[ends > horizon]] = True
    alive = np.flatnonzero(((state == WAITING) | (state == RUNNING)) & ~lasting)
    index = np.full(k, -1)
    index[alive] = np.arange(len(alive))
    """Real job index -> belief index: finished and lasting jobs are left out."""
    known = _known_jobs(sim, alive)
    scenario = Scenario(
        f"belief:{sim.scenario.name}",
        sim.scenario.nodes,  # what each node is; what it holds now comes from `sim` below
        tuple(known + list(futures or ())),
        horizon,
        None,
        sim.scenario.placement_only,
        sim.gpu_types,
    )
    belief = BeliefEngine(scenario, sim.window, objective=sim.objective, cluster=sim)
    belief.alive = alive
    belief._shape_table = known_shapes(sim) if shapes is None else shapes
    if not futures and (fastest := getattr(sim, "_fastest_ever", None)) is not None:
        belief._fastest_ever = np.append(fastest[alive], fastest[-1])  # per job, as bound.fastest_ever
    m = len(alive)
    for name in _KNOWN_STATE:
        getattr(belief, name)[:m] = getattr(sim, name)[alive]
    for name in _KNOWN_RESOURCES:
        np.copyto(getattr(belief, name), getattr(sim, name))
    kept = running[~lasting[running]].tolist()
    belief.job_devices = {}
    for job, node in zip(kept, sim.node_of[kept].tolist(), strict=True):
        held = sim.job_devices.get(job)
        if held is not None:
            belief.job_devices[int(index[job])] = held
        belief.running_on[node].add(int(index[job]))
    belief.n_running = len(kept)
    belief.waiting = index[sim.waiting].tolist()
    belief._window_cache = None
    belief.next_arrival = m
    belief.now = now
    belief.busy_cpu_s, belief.busy_gpu_s = sim.busy_cpu_s, sim.busy_gpu_s
    belief.placements = sim.placements
    belief.total_priority = 1.0
    belief.n_schedulable = 1
    belief.events = []
    running = np.flatnonzero(belief.state[:m] == RUNNING)
    ends = dict(zip(running.tolist(), np.maximum(belief.expected_end[running], now).tolist(), strict=True))
    if factors is not None:
        belief.runtime[:], ends = sampled_runtimes(belief, factors)
    # Completions in start order (the order a scheduler placed them), each at its estimate.
    for job in running[np.lexsort((running, belief.start[running]))].tolist():
        belief.expect_completion(job, ends[job])
    return belief
