"""The event-driven cluster engine: arrays in, events out, no policy knowledge.

The engine owns the state of one episode as numpy arrays (one row per job, one per
node) so that masks and features are a handful of vectorised operations. Events are
arrivals (jobs sorted by submit time, consumed by a pointer), completions and node
failures / repairs (a heap). Python loops run over events, never over job x node pairs.

GPUs are devices. A node's GPUs of one type are `count` devices with a free share each
(1.0 when idle). A fractional job (gpus < 1, GPU sharing as in the Alibaba trace) takes
that share of ONE device, the fullest device it fits on (best fit, so shares pack
together and whole devices stay free); a job with g >= 1 GPUs takes ceil(g) wholly free
devices. Pooling the shares instead would let two 0.6 jobs share 1.2 of two GPUs, which
no real cluster allows, and would hide exactly the fragmentation FGD exists for. For the
masks the engine keeps, per node and type, the number of wholly free devices and the
largest free share, so a fit test stays O(1) per (job, node, type).
"""

from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass

import numpy as np

from worker.contracts import OBJECTIVES
from worker.sim import devices
from worker.sim.model import NodeStatus, Scenario

FUTURE, WAITING, RUNNING, DONE, UNSCHEDULABLE = 0, 1, 2, 3, 4
_COMPLETE, _FAIL, _REPAIR = 0, 1, 2
MIN_RUNTIME_FOR_SLOWDOWN_S = 10.0
"""Bounded slowdown's floor on runtime, so seconds-long jobs don't dominate the mean."""
EPS = devices.EPS
"""Slack for float comparisons of fractional resources (GPU shares add up to 0.999...)."""


def device_fits(need: np.ndarray, whole_free: np.ndarray, max_share: np.ndarray) -> np.ndarray:
    """Whether a GPU request fits a node's devices of one type (broadcasting).

    `need` is the job's GPUs (> 0), `whole_free` the number of wholly free devices and
    `max_share` the largest free share of one device of that type."""
    return np.where(need >= 1.0 - EPS, whole_free >= np.ceil(need - EPS) - EPS, max_share >= need - EPS)


@dataclass(frozen=True, slots=True)
class Fit:
    """Which window slots fit which nodes right now, and at what GPU speed."""

    fits: np.ndarray  # bool [K, N]
    speed: np.ndarray  # float [K, N]: speed of the fastest usable GPU type (1.0 for CPU jobs)


@dataclass(slots=True)
class EngineState:
    """Everything of an engine that changes during an episode, captured by `snapshot`.

    Arrays are private copies; `restore` copies them back into the engine's own arrays
    (np.copyto), so a search can return to a decision point many times without
    `copy.deepcopy` or any allocation of engine-sized arrays. The static per-job and
    per-node arrays (sizes, estimates, capacities, speeds) are not part of it: nothing
    changes them once the engine is built."""

    arrays: dict[str, np.ndarray]
    job_devices: dict[int, np.ndarray]
    running_on: list[set[int]]
    waiting: list[int]
    events: list[tuple[float, int, int, int, int]]
    scalars: dict[str, object]
    rng: dict


class ClusterSim:
    """One episode of one scenario. Deterministic given the scenario and `seed`.

    `seed` drives only node failures; everything else about the workload is already in
    the scenario, so two policies run on the same (scenario, seed) see the same world.
    """

    def __init__(
        self,
        scenario: Scenario,
        window: int,
        seed: int = 0,
        objective: str = "deadline",
        cluster: ClusterSim | None = None,
    ) -> None:
        """`cluster`: an engine over the same nodes (`scenario.nodes`, same GPU types) whose
        node tables this one shares instead of building them, its nodes as they are now
        (free resources, devices, usable): how a search's belief starts at a decision point
        without paying for the cluster's set-up at every decision."""
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
        self.scenario = scenario
        self.objective = objective
        self.window = window
        self.rng = np.random.default_rng(seed)
        self.gpu_types = scenario.gpu_types if cluster is None else self._types_of(scenario, cluster)
        type_index = {t: i for i, t in enumerate(self.gpu_types)}
        n_types = len(self.gpu_types)
        nodes, jobs = scenario.nodes, scenario.jobs

        if cluster is None:
            self.node_ids = [n.id for n in nodes]
            self.cap_cpu = np.array([n.cpus for n in nodes], dtype=np.float64)
            self.cap_mem = np.array([n.memory_gb for n in nodes], dtype=np.float64)
            self.cap_gpu = np.zeros((len(nodes), n_types))
            self.speed = np.zeros((len(nodes), n_types))
            for i, node in enumerate(nodes):
                for gpu_type, count in node.gpus.items():
                    self.cap_gpu[i, type_index[gpu_type]] = count
                    self.speed[i, type_index[gpu_type]] = node.speed_of(gpu_type)
            self.usable = np.array([n.status == NodeStatus.OK for n in nodes])
            self._init_devices(nodes, type_index)
        else:
            self._share_nodes(cluster)

        # Job arrays carry one extra sentinel row that fits nowhere: it pads the window.
        n_jobs = len(jobs)
        self.n_jobs = n_jobs
        self.job_ids = [j.id for j in jobs]
        pad = [np.inf]
        self.cpu = np.array([j.cpus for j in jobs] + pad)
        self.mem = np.array([j.memory_gb for j in jobs] + pad)
        self.gpu = np.array([j.gpus for j in jobs] + pad)
        self.cpu_only = self.gpu == 0
        self.allowed = np.ones((n_jobs + 1, n_types), dtype=bool)
        for i, job in enumerate(jobs):
            if job.gpu_types:
                self.allowed[i] = False
                self.allowed[i, [type_index[t] for t in job.gpu_types]] = True
        self.allowed[n_jobs] = False
        self.priority = np.array([j.priority for j in jobs] + [0], dtype=np.float64)
        self.submit = np.array([j.submit_s for j in jobs] + [0.0])
        self.estimate = np.array([j.runtime_estimate_s for j in jobs] + [0.0])
        self.runtime = np.array([j.runtime_s for j in jobs] + [0.0])
        self.deadline = np.array([j.deadline_s for j in jobs] + [0.0])
        if n_jobs > 1 and np.any(np.diff(self.submit[:n_jobs]) < 0):
            raise ValueError(f"scenario {scenario.name!r}: jobs must be sorted by submit_s")

        self.schedulable = self._fits_capacity(scenario)
        self.state = np.full(n_jobs, FUTURE, dtype=np.int8)
        self.start = np.full(n_jobs, np.nan)
        self.finish = np.full(n_jobs, np.nan)
        self.node_of = np.full(n_jobs, -1)
        self.expected_end = np.full(n_jobs, np.inf)
        """When each running job should end by its estimate: what a scheduler can know."""
        self.type_of = np.full(n_jobs, -1)
        self.attempt = np.zeros(n_jobs, dtype=np.int64)
        self.total_priority = float(self.priority[:n_jobs][self.schedulable].sum()) or 1.0
        self.n_schedulable = max(int(self.schedulable.sum()), 1)
        self.total_gpu = float(self.cap_gpu.sum()) or 1.0
        self.paid = np.zeros(n_jobs)
        """Reward paid when each running job started, taken back exactly if it is killed."""

        if cluster is None:
            self.free_cpu = self.cap_cpu.copy()
            self.free_mem = self.cap_mem.copy()
            self.free_gpu = self.cap_gpu.copy()
        else:
            self.free_cpu = cluster.free_cpu.copy()
            self.free_mem = cluster.free_mem.copy()
            self.free_gpu = cluster.free_gpu.copy()
        self.job_devices: dict[int, np.ndarray] = {}
        """Device slots (columns of `dev_free`) each running GPU job holds."""
        self.running_on: list[set[int]] = [set() for _ in nodes]
        self.n_running = 0
        self.running_count = np.zeros(len(nodes))
        self.waiting: list[int] = []
        self._window_cache: np.ndarray | None = None
        self.next_arrival = 0
        self.events: list[tuple[float, int, int, int, int]] = []
        self._seq = 0
        self.now = 0.0
        self.busy_cpu_s = 0.0
        self.busy_gpu_s = 0.0
        self.reward = 0.0
        self.placements = 0
        self.changed = True
        """Set when resources were freed or the window gained a job: only then can a
        decision that had no valid pair get one."""

        if scenario.failures is not None:
            for n in range(len(nodes)):
                self._push(self._draw(scenario.failures.mean_time_to_failure_s), _FAIL, n)
        self._arrive(0.0)

    _NODE_TABLES = (
        "node_ids", "cap_cpu", "cap_mem", "cap_gpu", "speed", "dev_type", "dev_cap", "cap_whole", "cap_share",
    )  # fmt: skip
    """What a node is (never changed once the engine is built): shared by `cluster=`."""
    _NODE_STATE = ("usable", "dev_free", "whole_free", "max_share")

    @staticmethod
    def _types_of(scenario: Scenario, cluster: ClusterSim) -> tuple[str, ...]:
        """`cluster`'s GPU types, which `scenario` must declare: its nodes are `cluster`'s, so
        they have no other type, and reading every node's (1,213 in FGD's experiment, at
        every decision of a search) would cost what sharing the tables saves."""
        named = {t for job in scenario.jobs for t in job.gpu_types}
        if scenario.declared_gpu_types != cluster.gpu_types or not named <= set(cluster.gpu_types):
            raise ValueError("cluster= must be an engine over the scenario's nodes and GPU types")
        return cluster.gpu_types

    def _share_nodes(self, cluster: ClusterSim) -> None:
        if len(cluster.node_ids) != len(self.scenario.nodes):
            raise ValueError("cluster= must be an engine over the scenario's nodes and GPU types")
        for name in self._NODE_TABLES:
            setattr(self, name, getattr(cluster, name))
        for name in self._NODE_STATE:
            setattr(self, name, getattr(cluster, name).copy())

    def _init_devices(self, nodes: tuple, type_index: dict[str, int]) -> None:
        """Device slots per node: `dev_type[n, d]` (-1 pads), `dev_free[n, d]` its free share.

        A fractional capacity (2.5 GPUs) becomes floor devices plus one device of the
        remaining share, so what a node offers never exceeds what it has."""
        slots: list[list[tuple[int, float]]] = []
        for node in nodes:
            row = []
            for gpu_type, count in node.gpus.items():
                whole = math.floor(count + EPS)
                row += [(type_index[gpu_type], 1.0)] * whole
                if count - whole > EPS:
                    row.append((type_index[gpu_type], float(count - whole)))
            slots.append(row)
        width = max((len(r) for r in slots), default=0)
        self.dev_type = np.full((len(nodes), width), -1, dtype=np.int64)
        self.dev_cap = np.zeros((len(nodes), width))
        for n, row in enumerate(slots):
            for d, (t, share) in enumerate(row):
                self.dev_type[n, d] = t
                self.dev_cap[n, d] = share
        self.dev_free = self.dev_cap.copy()
        n_types = self.cap_gpu.shape[1]
        self.whole_free = np.zeros((len(nodes), n_types))
        self.max_share = np.zeros((len(nodes), n_types))
        devices.summarize_all(self.dev_type, self.dev_free, self.whole_free, self.max_share)
        self.cap_whole = self.whole_free.copy()
        self.cap_share = self.max_share.copy()

    def _fits_capacity(self, scenario: Scenario) -> np.ndarray:
        """Jobs that some node could ever run; the rest are reported unschedulable.

        Without a failure process a node's status never changes, so only OK nodes count;
        with one, DOWN nodes may come back.
        """
        ever_usable = self.usable.copy()
        if scenario.failures is not None:
            ever_usable = np.array([n.status != NodeStatus.BUSY for n in scenario.nodes])
        if not len(scenario.nodes):
            return np.zeros(self.n_jobs, dtype=bool)
        jobs = np.arange(self.n_jobs)
        fit = self.fit(jobs, self.cap_cpu, self.cap_mem, self.cap_whole, self.cap_share, ever_usable)
        return fit.fits.any(axis=1)

    def _draw(self, mean: float) -> float:
        return float(self.rng.exponential(mean))

    def _push(self, time: float, kind: int, index: int, attempt: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self.events, (time, self._seq, kind, index, attempt))

    def fit(
        self,
        jobs: np.ndarray,
        free_cpu: np.ndarray | None = None,
        free_mem: np.ndarray | None = None,
        whole_free: np.ndarray | None = None,
        max_share: np.ndarray | None = None,
        usable: np.ndarray | None = None,
    ) -> Fit:
        """Vectorised fit of `jobs` (indices, sentinel allowed) against every node: the
        reference the compiled kernel in `features` is tested against."""
        free_cpu = self.free_cpu if free_cpu is None else free_cpu
        free_mem = self.free_mem if free_mem is None else free_mem
        whole_free = self.whole_free if whole_free is None else whole_free
        max_share = self.max_share if max_share is None else max_share
        usable = self.usable if usable is None else usable
        need_gpu = np.where(np.isfinite(self.gpu[jobs]), self.gpu[jobs], 1e9)[:, None, None]
        type_ok = self.allowed[jobs][:, None, :] & device_fits(need_gpu, whole_free[None], max_share[None])
        if type_ok.shape[2]:
            speed = np.where(type_ok, self.speed[None], 0.0).max(axis=2)
        else:
            speed = np.zeros((len(jobs), len(free_cpu)))
        cpu_only = self.cpu_only[jobs][:, None]
        speed = np.where(cpu_only, 1.0, speed)
        fits = (
            (self.cpu[jobs][:, None] <= free_cpu[None] + EPS)
            & (self.mem[jobs][:, None] <= free_mem[None] + EPS)
            & (speed > 0)
            & usable[None]
        )
        return Fit(fits=fits, speed=speed)

    def window_jobs(self) -> np.ndarray:
        """Indices of the K oldest waiting jobs, padded with the sentinel row."""
        if self._window_cache is not None:
            return self._window_cache
        head = self.waiting[: self.window]
        if len(head) < self.window:
            head = head + [self.n_jobs] * (self.window - len(head))
        self._window_cache = np.array(head, dtype=np.int64)
        return self._window_cache

    @property
    def done(self) -> bool:
        return self.next_arrival >= self.n_jobs and not self.waiting and not self.n_running

    def has_future_events(self) -> bool:
        return self.next_arrival < self.n_jobs or bool(self.events)

    def place(self, slot: int, node: int, device: int = -1) -> float:
        """Start the job in window `slot` on `node`; returns the reward earned now.

        The reward is the job's share of the headline score, paid when it starts if it
        will finish by its deadline: the engine knows the actual runtime, so this is the
        score's exact decomposition, delivered at the decision that earned it.
        """
        job = self.waiting.pop(slot)
        self._window_cache = None
        gpu_type = -1
        speed = 1.0
        if not self.cpu_only[job]:
            gpu_type, speed = self.gpu_type_for(job, node)
            self._take_devices(job, node, gpu_type, device)
        self.free_cpu[node] -= self.cpu[job]
        self.free_mem[node] -= self.mem[job]
        run = float(self.runtime[job]) / speed
        self.state[job] = RUNNING
        self.start[job] = self.now
        self.expected_end[job] = self.now + float(self.estimate[job]) / speed
        self.node_of[job] = node
        self.type_of[job] = gpu_type
        self.running_on[node].add(job)
        self.n_running += 1
        self.running_count[node] += 1
        self._push(self.now + run, _COMPLETE, job, int(self.attempt[job]))
        self.placements += 1
        earned = self._start_reward(job, run)
        self.paid[job] = earned
        self.reward += earned
        return earned

    def discard(self, slot: int) -> None:
        """Give up on the job in window `slot`: it is reported unschedulable. For
        experiments where a job that does not fit on arrival fails (FGD's allocation
        experiment), never for the env's policies, whose jobs wait."""
        job = self.waiting.pop(slot)
        self._window_cache = None
        self.state[job] = UNSCHEDULABLE

    def gpu_type_for(self, job: int, node: int) -> tuple[int, float]:
        """The fastest allowed type on `node` whose devices fit the job (-1, 0.0 if none)."""
        t = devices.fastest_type(
            self.allowed[job],
            self.speed[node],
            self.whole_free[node],
            self.max_share[node],
            float(self.gpu[job]),
        )
        return t, float(self.speed[node, t]) if t >= 0 else 0.0

    def _take_devices(self, job: int, node: int, gpu_type: int, device: int = -1) -> None:
        need = float(self.gpu[job])
        self.job_devices[job] = devices.take(
            self.dev_type[node],
            self.dev_free[node],
            gpu_type,
            need,
            self.whole_free[node],
            self.max_share[node],
            device,
        )
        self.free_gpu[node, gpu_type] -= need

    def _start_reward(self, job: int, run: float) -> float:
        """The objective's share earned by starting `job` now for `run` seconds (its actual
        runtime on the chosen GPU): the episode return is the objective's metric exactly.

        - deadline: priority share if it will finish by its deadline (the headline score);
        - slowdown: minus its bounded slowdown / schedulable jobs (mean bounded slowdown);
        - allocation: its GPUs / cluster GPUs (the GPU allocation ratio when jobs never
          leave, as in the FGD experiment);
        - utilization is paid at the end of the episode by the env (not decomposable).
        """
        if self.objective == "deadline":
            if self.now + run <= self.deadline[job]:
                return float(self.priority[job]) / self.total_priority
            return 0.0
        if self.objective == "slowdown":
            wait = self.now - self.submit[job]
            return -max(1.0, (wait + run) / max(run, MIN_RUNTIME_FOR_SLOWDOWN_S)) / self.n_schedulable
        if self.objective == "allocation":
            return 0.0 if self.cpu_only[job] else float(self.gpu[job]) / self.total_gpu
        return 0.0

    def advance(self, horizon: float) -> float:
        """Move time to the next event and apply everything due then; returns reward."""
        times = []
        if self.next_arrival < self.n_jobs:
            times.append(self.submit[self.next_arrival])
        if self.events:
            times.append(self.events[0][0])
        if not times:
            return 0.0
        t = float(min(times))
        if t > horizon:
            self.now = horizon
            return 0.0
        self.now = t
        earned = 0.0
        while self.events and self.events[0][0] <= t:
            _, _, kind, index, attempt = heapq.heappop(self.events)
            if kind == _COMPLETE:
                if attempt == self.attempt[index] and self.state[index] == RUNNING:
                    self._complete(index)
            elif kind == _FAIL:
                earned += self._fail(index)
            else:
                self._repair(index)
        self._arrive(t)
        self.reward += earned
        return earned

    def _arrive(self, t: float) -> None:
        while self.next_arrival < self.n_jobs and self.submit[self.next_arrival] <= t:
            job = self.next_arrival
            self.next_arrival += 1
            if self.schedulable[job]:
                self.state[job] = WAITING
                self.waiting.append(job)
                if len(self.waiting) <= self.window:
                    self.changed = True
                    self._window_cache = None
            else:
                self.state[job] = UNSCHEDULABLE

    def _release(self, job: int) -> None:
        node = int(self.node_of[job])
        self.free_cpu[node] += self.cpu[job]
        self.free_mem[node] += self.mem[job]
        if self.type_of[job] >= 0:
            need = float(self.gpu[job])
            devices.give_back(
                self.dev_type[node],
                self.dev_free[node],
                self.dev_cap[node],
                self.job_devices.pop(job),
                need,
                self.whole_free[node],
                self.max_share[node],
            )
            self.free_gpu[node, self.type_of[job]] += need
        self.running_on[node].discard(job)
        self.n_running -= 1
        self.running_count[node] -= 1
        elapsed = self.now - self.start[job]
        self.busy_cpu_s += self.cpu[job] * elapsed
        self.busy_gpu_s += self.gpu[job] * elapsed

    def _complete(self, job: int) -> None:
        self._release(job)
        self.changed = True
        self.state[job] = DONE
        self.finish[job] = self.now

    def _fail(self, node: int) -> float:
        """A node goes DOWN: its jobs are killed and requeued in submit order."""
        failures = self.scenario.failures
        assert failures is not None
        earned = 0.0
        for job in sorted(self.running_on[node]):
            earned -= self.paid[job]
            self.paid[job] = 0.0
            self._release(job)
            self.attempt[job] += 1
            self.state[job] = WAITING
            self.node_of[job] = -1
            bisect.insort(self.waiting, job)
            self._window_cache = None
            self.changed = True
        self.usable[node] = False
        self._push(self.now + self._draw(failures.mean_time_to_repair_s), _REPAIR, node)
        return earned

    def _repair(self, node: int) -> None:
        failures = self.scenario.failures
        assert failures is not None
        self.usable[node] = True
        self.changed = True
        self._push(self.now + self._draw(failures.mean_time_to_failure_s), _FAIL, node)

    _STATE_ARRAYS = (
        "state", "start", "finish", "node_of", "expected_end", "type_of", "attempt", "paid",
        "free_cpu", "free_mem", "free_gpu", "dev_free", "whole_free", "max_share",
        "usable", "running_count",
    )  # fmt: skip
    _STATE_SCALARS = (
        "n_running", "next_arrival", "_seq", "now", "busy_cpu_s", "busy_gpu_s", "reward", "placements",
        "changed", "_window_cache",
    )  # fmt: skip
    """Immutable values (the window cache is an array nobody writes to: it is replaced)."""

    def snapshot(self) -> EngineState:
        """The episode's mutable state now (see EngineState); cheap enough to take at
        every decision of a search."""
        return EngineState(
            arrays={name: getattr(self, name).copy() for name in self._STATE_ARRAYS},
            job_devices=dict(self.job_devices),  # device arrays are replaced, never mutated
            running_on=[set(jobs) for jobs in self.running_on],
            waiting=list(self.waiting),
            events=list(self.events),  # a heap of immutable tuples stays a heap when copied
            scalars={name: getattr(self, name) for name in self._STATE_SCALARS},
            rng=self.rng.bit_generator.state,
        )

    def restore(self, saved: EngineState) -> None:
        """Put the engine back to `saved` (taken from this engine): the episode then
        continues exactly as it did from the snapshot, failures included."""
        for name, values in saved.arrays.items():
            np.copyto(getattr(self, name), values)
        self.job_devices = dict(saved.job_devices)
        for jobs, kept in zip(self.running_on, saved.running_on, strict=True):
            if jobs != kept:  # most nodes of a large cluster did not change since the snapshot
                jobs.clear()
                jobs.update(kept)
        self.waiting[:] = saved.waiting
        self.events[:] = saved.events
        for name, value in saved.scalars.items():
            setattr(self, name, value)
        self.rng.bit_generator.state = saved.rng

    def expect_completion(self, job: int, time: float) -> None:
        """Schedule running `job` to complete at `time`: how a search's belief, which knows
        only estimates, says when the jobs it found running will end."""
        self._push(time, _COMPLETE, job, int(self.attempt[job]))
