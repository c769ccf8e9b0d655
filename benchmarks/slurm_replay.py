"""Sim against reality: one job stream replayed on a real Slurm cluster, twice, and in our
simulator; the same metrics from each run's per-job records, and how far the simulator's
prediction is from what Slurm did.

How to run (as root: the emulated cluster of tests/support/slurm_cluster.py needs it):

- `.venv/bin/python benchmarks/slurm_replay.py` (about 12 minutes): 80 jobs of the
  `steady` workload on 8 nodes (seed 0), 1 simulated minute replayed as 1 second;
  prints the JSON and writes `benchmarks/results/slurm_replay.json`.
- `--quick` (about a minute): 12 jobs, 1 simulated minute as 0.25 s; not written to the
  results unless `--out` says where.
- `--jobs`, `--load`, `--seed`, `--compression`, `--interval`, `--policy` change the stream
  and the loop.

The stream: the `steady` generator sized to the emulated cluster (its 8 nodes: 4 with 8
p5 GPUs, 4 with 8 p4 GPUs, 96 CPUs, 1 TB each, started as 8 `slurmd`). Every time is
divided by `compression` (simulated seconds per wall second). Each job is an `sbatch` of
a `sleep` at its compressed arrival with its CPUs, memory and GPUs (`gpu:p5:N` when it
must have p5, `gpu:N` when either type will do); the sleep is its compressed actual
runtime divided by the speed of the node it lands on (p4: 0.6, read from
`$SLURMD_NODENAME`), as in the simulator. What a scheduler may know goes in the job's
comment: `priority=`, `deadline=` (epoch) and `estimate=` (the compressed runtime
estimate, in seconds; Slurm's time limits are whole minutes, too coarse after
compression). The time limit is only a kill guard: the compressed longest possible
runtime (actual or estimate, on a p4), rounded up to minutes, plus one minute.

The three runs:
1. `slurm_backfill`: Slurm alone (sched/backfill, priority/basic: FIFO order; it sees
   neither priorities nor deadlines, which live in the comment), its scheduling intervals
   shortened to a second (`SLURM_SCHEDULER`) as the stream is compressed.
2. `slurm_steered`: the same, plus the service's control loop in `enforce` mode run
   in-process every `interval` wall seconds: the adapter's `read_cluster`, the planning
   module's `plan_input` / `cluster_plan` with the policy, the adapter's `apply_plan`
   (read-check-apply). The one difference from the `plan_cluster` activity: the plan
   request's times are multiplied back by `compression`, so the policy plans in the
   units it was tuned in. Slurm keeps scheduling too: a job it starts before a tick sees
   it counts as Slurm's (`started_by_loop` says how many the loop started).
3. `sim`: our simulator on the same stream with the same policy (actual runtimes,
   arrivals as generated); `sim_fifo_backfill` the simulator's nearest heuristic to
   Slurm's own (`easy:fifo+first`), as its prediction of run 1.

Per-job records on Slurm: `squeue --json --states=all` polled every second during the
run (sacct needs slurmdbd, which the emulated cluster does not run): Slurm's own submit,
start and end times, whole seconds (1 s = `compression` simulated seconds). Every metric
comes from these records through one function, `stream_metrics`, for all runs: score
(priority-weighted share finished by the deadline), mean bounded slowdown (10 s bound)
and GPU utilisation over the makespan, in simulated seconds.

Results to expect: see docs (results page `slurm_replay`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from provenance import provenance

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.slurm_cluster import EmulatedNode, SlurmCluster, start_slurm_cluster  # noqa: E402

from worker.clusters.planning import cluster_plan, plan_input  # noqa: E402
from worker.clusters.slurm import SlurmClient, apply_plan, parse_mark, read_cluster  # noqa: E402
from worker.contracts import KNOWN_GPU_SPEEDS, PolicyRef  # noqa: E402
from worker.contracts.clusters import ClusterConfig  # noqa: E402
from worker.convert import job_from_spec, node_from_spec, plan_output  # noqa: E402
from worker.sim.engine import MIN_RUNTIME_FOR_SLOWDOWN_S  # noqa: E402
from worker.sim.evaluate import run_episode  # noqa: E402
from worker.sim.league import build_heuristics  # noqa: E402
from worker.sim.model import Job, Scenario  # noqa: E402
from worker.sim.plan import plan_schedule  # noqa: E402
from worker.sim.policy import Policy  # noqa: E402
from worker.sim.workloads import WorkloadSpec, make_scenario  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "slurm_replay.json"
SLURM_FIFO_LIKE = "easy:fifo+first"
"""The simulator's heuristic nearest to Slurm's defaults (priority/basic is submit order;
backfill lets later jobs jump ahead without delaying the first)."""
SLURM_SCHEDULER = "SchedulerParameters=bf_interval=1,bf_resolution=1,sched_interval=1"
"""Slurm's scheduling intervals compressed like the stream: by default the backfill pass
runs every 30 s, plans on a 60 s grid and the full main pass every 60 s: half an hour and
more of simulated time at 60x, which real Slurm never costs hour-long jobs."""
POLL_S = 1.0
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}
WINDOW = 32
SLOWEST = min(KNOWN_GPU_SPEEDS.values())


@dataclasses.dataclass(frozen=True)
class Replay:
    """A stream and how it is replayed: `compression` simulated seconds per wall second."""

    scenario: Scenario
    spec: WorkloadSpec
    compression: float

    def wall(self, sim_seconds: float) -> float:
        return sim_seconds / self.compression


@dataclasses.dataclass
class JobRecord:
    """One job's life in simulated seconds from the stream's start (None: never happened)."""

    id: str
    submit: float
    start: float | None = None
    end: float | None = None
    node: str | None = None
    state: str = "PENDING"
    started_by_loop: bool = False


def build_replay(jobs: int, load: float | None, seed: int, compression: float) -> Replay:
    spec = WorkloadSpec("steady", nodes=8, jobs=jobs, load=load)
    return Replay(make_scenario(spec, seed), spec, compression)


def emulated_nodes(scenario: Scenario) -> list[EmulatedNode]:
    nodes = []
    for node in scenario.nodes:
        ((gpu_type, count),) = node.gpus.items()
        nodes.append(
            EmulatedNode(node.id, int(node.cpus), int(node.memory_gb * 1000), str(gpu_type), int(count))
        )
    return nodes


def sbatch_options(job: Job, replay: Replay, t0: float) -> tuple[list[str], str]:
    """The job's sbatch options and its command: a sleep as long as its compressed actual
    runtime on the node it lands on."""
    slow_nodes = [n.id for n in replay.scenario.nodes if any(n.speed_of(t) < 1.0 for t in n.gpus)]
    longest = max(job.runtime_s, job.runtime_estimate_s) / SLOWEST
    options = [
        f"--job-name={job.id}",
        "--ntasks=1",
        f"--cpus-per-task={math.ceil(job.cpus)}",
        f"--mem={math.ceil(job.memory_gb * 1000)}",
        f"--time={math.ceil(replay.wall(longest) / 60) + 1}",
        f"--comment=priority={job.priority},deadline={t0 + replay.wall(job.deadline_s):.3f},"
        f"estimate={replay.wall(job.runtime_estimate_s):.3f}",
    ]
    if job.gpus:
        gpu_type = f"{job.gpu_types[0]}:" if len(job.gpu_types) == 1 else ""
        options.append(f"--gres=gpu:{gpu_type}{math.ceil(job.gpus)}")
        slow = replay.wall(job.runtime_s) / SLOWEST
        command = (
            f"case $SLURMD_NODENAME in {'|'.join(slow_nodes)}) exec sleep {slow:.3f};; "
            f"*) exec sleep {replay.wall(job.runtime_s):.3f};; esac"
        )
    else:
        command = f"exec sleep {replay.wall(job.runtime_s):.3f}"
    return options, command


def stream_metrics(replay: Replay, records: dict[str, JobRecord]) -> dict[str, float]:
    """Score, mean bounded slowdown and GPU utilisation from per-job records: the one
    function every run's figures come from."""
    jobs = {j.id: j for j in replay.scenario.jobs}
    total_priority = sum(j.priority for j in jobs.values())
    done = [r for r in records.values() if r.end is not None and r.start is not None]
    on_time = sum(jobs[r.id].priority for r in done if r.end <= jobs[r.id].deadline_s)  # type: ignore[operator]
    slowdowns = [
        max(1.0, (r.end - r.submit) / max(r.end - r.start, MIN_RUNTIME_FOR_SLOWDOWN_S))  # type: ignore[operator]
        for r in done
    ]
    first = min((r.submit for r in records.values()), default=0.0)
    last = max((r.end for r in done), default=first)  # type: ignore[type-var]
    total_gpus = sum(sum(n.gpus.values()) for n in replay.scenario.nodes)
    busy = sum(jobs[r.id].gpus * (r.end - r.start) for r in done)  # type: ignore[operator]
    makespan = max(last - first, 1e-9)  # type: ignore[operator]
    return {
        "score": on_time / total_priority,
        "mean_bounded_slowdown": statistics.fmean(slowdowns) if slowdowns else 0.0,
        "utilization": busy / (total_gpus * makespan),
        "makespan_s": makespan,
        "jobs_finished": len(done),
        "mean_wait_s": statistics.fmean(r.start - r.submit for r in done) if done else 0.0,  # type: ignore[operator]
    }


def build_policy(name: str, spec: WorkloadSpec) -> Policy:
    (policy,), skipped = build_heuristics([name], spec, WINDOW)
    if skipped:
        raise ValueError(f"policy {name!r} does not apply to {spec.name}")
    return policy


def simulate(replay: Replay, policy: Policy) -> dict[str, JobRecord]:
    """The simulator's prediction: the stream played to its end with the policy."""
    sim = run_episode(policy, replay.scenario, WINDOW, sim_seed=0).sim
    assert sim is not None
    records = {}
    for i, job in enumerate(replay.scenario.jobs):
        started = not math.isnan(sim.start[i])
        records[job.id] = JobRecord(
            job.id,
            job.submit_s,
            float(sim.start[i]) if started else None,
            float(sim.finish[i]) if not math.isnan(sim.finish[i]) else None,
            sim.node_ids[sim.node_of[i]] if started else None,
            "COMPLETED" if not math.isnan(sim.finish[i]) else "PENDING",
        )
    return records


class SteeringLoop:
    """The control loop's tick (read -> plan -> apply) in-process, every `interval` s."""

    def __init__(self, config: ClusterConfig, policy: Policy, compression: float) -> None:
        self.config = config
        self.policy = policy
        self.compression = compression
        self.client = SlurmClient(config.endpoint)
        self.tick_ms: list[float] = []
        self.outcomes: dict[str, int] = {}
        self.failures: list[str] = []

    def tick(self, number: int) -> None:
        started = time.perf_counter()
        snapshot = read_cluster(self.config, self.client)
        request, _ = plan_input(
            self.config, snapshot, PolicyRef(kind="heuristic", name=self.policy.name), WINDOW
        )
        if request is not None:
            scale = self.compression
            jobs = [
                dataclasses.replace(
                    job_from_spec(spec),
                    runtime_estimate_s=spec.runtime_estimate_s * scale,
                    runtime_s=spec.runtime_estimate_s * scale,
                    deadline_s=math.inf if spec.deadline_s is None else spec.deadline_s * scale,
                )
                for spec in request.jobs or []
            ]
            nodes = [node_from_spec(n) for n in request.nodes or []]
            planned = plan_schedule(self.policy, nodes, jobs, WINDOW)
            plan = cluster_plan(snapshot, plan_output(planned, None, None, 0.0))
            for applied in apply_plan(self.config, snapshot, plan, f"replay-{number}", self.client):
                key = f"{applied.action}:{applied.outcome}"
                self.outcomes[key] = self.outcomes.get(key, 0) + 1
        self.tick_ms.append((time.perf_counter() - started) * 1000)

    def run(self, stop: threading.Event) -> None:
        number = 0
        while not stop.is_set():
            began = time.monotonic()
            try:
                self.tick(number)
            except Exception as error:  # a failed tick is recorded; the next one goes on, as in the workflow
                self.failures.append(f"tick {number}: {error}")
            number += 1
            stop.wait(max(0.0, self.config.interval_s - (time.monotonic() - began)))


def replay_on_slurm(
    replay: Replay, policy: Policy | None, interval_s: float, nodes: list[EmulatedNode]
) -> tuple[dict[str, JobRecord], dict[str, Any]]:
    """Submit the stream to a fresh emulated cluster at its compressed arrival times
    (steered by the loop when `policy` is given) and record every job from Slurm's view."""
    root = Path(tempfile.mkdtemp(prefix="slurm", dir="/tmp"))
    cluster = start_slurm_cluster(root, nodes, [SLURM_SCHEDULER])
    try:
        return _replay(cluster, replay, policy, interval_s)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _replay(
    cluster: SlurmCluster, replay: Replay, policy: Policy | None, interval_s: float
) -> tuple[dict[str, JobRecord], dict[str, Any]]:
    jobs = replay.scenario.jobs
    t0 = float(math.ceil(time.time()) + 1)  # Slurm's clock is whole seconds: align the stream to it
    stop = threading.Event()
    loop: SteeringLoop | None = None
    threads = [threading.Thread(target=_submit_all, args=(cluster, replay, t0), daemon=True)]
    if policy is not None:
        config = ClusterConfig(
            name="replay", endpoint=str(cluster.conf), mode="enforce", interval_s=interval_s
        )
        loop = SteeringLoop(config, policy, replay.compression)
        threads.append(threading.Thread(target=loop.run, args=(stop,), daemon=True))
    for thread in threads:
        thread.start()
    records: dict[str, JobRecord] = {}
    patience = replay.wall(replay.scenario.horizon_s) + 60
    while time.time() - t0 < patience:
        time.sleep(POLL_S)
        _poll(cluster, replay, t0, records)
        if len(records) == len(jobs) and all(r.state in FINAL_STATES for r in records.values()):
            break
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    info: dict[str, Any] = {"wall_s": round(time.time() - t0, 1)}
    if loop is not None:
        info |= {
            "ticks": len(loop.tick_ms),
            "tick_ms_median": round(statistics.median(loop.tick_ms), 1) if loop.tick_ms else None,
            "tick_ms_max": round(max(loop.tick_ms), 1) if loop.tick_ms else None,
            "decisions": dict(sorted(loop.outcomes.items())),
            "failed_ticks": loop.failures[:10],
            "started_by_loop": sum(r.started_by_loop for r in records.values()),
        }
    return records, info


def _submit_all(cluster: SlurmCluster, replay: Replay, t0: float) -> None:
    for job in replay.scenario.jobs:
        time.sleep(max(0.0, t0 + replay.wall(job.submit_s) - time.time()))
        options, command = sbatch_options(job, replay, t0)
        cluster.submit(*options, command=command)


def _poll(cluster: SlurmCluster, replay: Replay, t0: float, records: dict[str, JobRecord]) -> None:
    """Merge Slurm's current view of every job (finished ones stay listed MinJobAge=300 s)."""
    out = cluster.run("squeue", "--states=all", "--json")
    for job in json.loads(out).get("jobs", []):
        state = str(job.get("job_state", "")).upper()

        def sim_time(field: str, job: dict[str, Any] = job) -> float:
            return (float(job[field]) - t0) * replay.compression

        record = records.setdefault(str(job["name"]), JobRecord(str(job["name"]), sim_time("submit_time")))
        record.state = state
        if state != "PENDING" and job.get("start_time"):
            record.start = sim_time("start_time")
            record.node = str(job.get("nodes") or "") or None
            mark = parse_mark(str(job.get("admin_comment") or ""))
            record.started_by_loop = mark.get("action") == "start" and mark.get("node") == record.node
        if state in FINAL_STATES and job.get("end_time"):
            record.end = sim_time("end_time")


def start_errors(predicted: dict[str, JobRecord], actual: dict[str, JobRecord]) -> dict[str, float | int]:
    """|predicted start - actual start| per job started in both, in simulated seconds."""
    errors = sorted(
        abs(p.start - actual[k].start)  # type: ignore[operator]
        for k, p in predicted.items()
        if p.start is not None and k in actual and actual[k].start is not None
    )
    if not errors:
        return {"jobs": 0}
    return {
        "jobs": len(errors),
        "mean_abs_s": statistics.fmean(errors),
        "median_abs_s": statistics.median(errors),
        "p90_abs_s": errors[min(len(errors) - 1, int(0.9 * len(errors)))],
        "max_abs_s": errors[-1],
        "same_node_share": sum(p.node == actual[k].node for k, p in predicted.items() if k in actual)
        / len(predicted),
    }


def comparison(
    replay: Replay, predicted: dict[str, JobRecord], actual: dict[str, JobRecord], names: tuple[str, str]
) -> dict[str, Any]:
    sim_m, slurm_m = stream_metrics(replay, predicted), stream_metrics(replay, actual)
    return {
        "sim": names[0],
        "slurm": names[1],
        "metric_diff": {k: sim_m[k] - slurm_m[k] for k in ("score", "mean_bounded_slowdown", "utilization")},
        "start_error": start_errors(predicted, actual),
    }


def run(
    jobs: int, load: float | None, seed: int, compression: float, interval_s: float, policy_name: str
) -> dict[str, Any]:
    replay = build_replay(jobs, load, seed, compression)
    nodes = emulated_nodes(replay.scenario)
    policy = build_policy(policy_name, replay.spec)
    records: dict[str, dict[str, JobRecord]] = {}
    info: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    records["sim"] = simulate(replay, policy)
    info["sim"] = {"wall_s": round(time.perf_counter() - started, 1), "policy": policy_name}
    records["sim_fifo_backfill"] = simulate(replay, build_policy(SLURM_FIFO_LIKE, replay.spec))
    info["sim_fifo_backfill"] = {"policy": SLURM_FIFO_LIKE}
    records["slurm_backfill"], info["slurm_backfill"] = replay_on_slurm(replay, None, interval_s, nodes)
    info["slurm_backfill"]["policy"] = "Slurm sched/backfill"
    records["slurm_steered"], info["slurm_steered"] = replay_on_slurm(replay, policy, interval_s, nodes)
    info["slurm_steered"]["policy"] = f"control loop ({policy_name}, enforce) + Slurm"
    return {
        **provenance(),
        "settings": {
            "workload": replay.spec.name,
            "nodes": len(nodes),
            "jobs": jobs,
            "load": load,
            "seed": seed,
            "compression": compression,
            "interval_s": interval_s,
            "policy": policy_name,
            "window": WINDOW,
            "slurm_conf": SLURM_SCHEDULER,
            "records": "squeue --json --states=all polled every second (Slurm's whole-second times)",
            "units": "simulated seconds (wall seconds x compression)",
        },
        "runs": {name: {**stream_metrics(replay, recs), **info[name]} for name, recs in records.items()},
        "sim_vs_slurm": [
            comparison(replay, records["sim"], records["slurm_steered"], ("sim", "slurm_steered")),
            comparison(
                replay,
                records["sim_fifo_backfill"],
                records["slurm_backfill"],
                ("sim_fifo_backfill", "slurm_backfill"),
            ),
        ],
        "jobs": [
            {
                "id": job.id,
                "submit_s": round(job.submit_s, 1),
                "estimate_s": round(job.runtime_estimate_s, 1),
                "runtime_s": round(job.runtime_s, 1),
                "deadline_s": round(job.deadline_s, 1),
                "priority": job.priority,
                "cpus": job.cpus,
                "gpus": job.gpus,
                "gpu_types": list(job.gpu_types),
                **{name: _job_row(recs.get(job.id)) for name, recs in records.items()},
            }
            for job in replay.scenario.jobs
        ],
    }


def _job_row(record: JobRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    row = {"start_s": record.start, "end_s": record.end, "node": record.node, "state": record.state}
    if record.started_by_loop:
        row["by_loop"] = True
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}


def main(
    quick: Annotated[
        bool, typer.Option(help="12 jobs at 240x: about a minute; not written unless --out.")
    ] = False,
    jobs: Annotated[
        int | None, typer.Option(help="Jobs in the stream (default 80; 12 with --quick).")
    ] = None,
    load: Annotated[float | None, typer.Option(help="Offered load (default: the preset's 0.95).")] = None,
    seed: int = 0,
    compression: Annotated[
        float | None, typer.Option(help="Simulated seconds per wall second (default 60; 240 with --quick).")
    ] = None,
    interval: Annotated[float, typer.Option(help="Wall seconds between the loop's ticks.")] = 1.0,
    policy: Annotated[str, typer.Option(help="The loop's and the simulator's policy.")] = "search:tuned",
    out: Annotated[Path | None, typer.Option(help="Where to write the JSON.")] = None,
) -> None:
    result = run(
        jobs or (12 if quick else 80), load, seed, compression or (240.0 if quick else 60.0), interval, policy
    )
    text = json.dumps(result, indent=1)
    print(text)
    target = out or (None if quick else RESULTS)
    if target is not None:
        target.write_text(text + "\n")


if __name__ == "__main__":
    typer.run(main)
