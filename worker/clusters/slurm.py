"""The Slurm adapter: read nodes and jobs from a controller, apply a tick's decisions.

It talks to Slurm 22.05 through its own clients (`sinfo --json`, `squeue --json`,
`scontrol update`) with `SLURM_CONF` pointing at the registered cluster: they
authenticate with munge, take tens of milliseconds, and cover everything the loop needs.
slurmrestd would add a daemon that must not run as root, a JWT key, and in 22.05 its job
update endpoint (v0.0.38) does not set `ReqNodeList`, `Priority`, `StartTime` and
`AdminComment` together; `scontrol show ... --json` only exists from 23.02.

How a tick steers Slurm (`enforce`):
- a job the plan starts now: `ReqNodeList=<node> StartTime=now Priority=<top>`; Slurm
  starts it there at its next scheduling pass (well under a second);
- a job the plan starts later: `StartTime=now+<lease> Priority=<its rank>`: it stays
  pending (reason BeginTime) until the next tick decides again. If the service stops,
  the lease runs out and Slurm schedules the job by itself, in the plan's order;
- a job the plan cannot place now and never (it needs more than is free anywhere, see
  worker/clusters/planning.py) is left alone, so Slurm starts it when room appears.
Every job touched carries `AdminComment=rlsched:action=...,tick=<tick id>`: the next read
recognises its lease and pin as the loop's own (not the user's), and a retried apply of the
same tick sees its own work and leaves it (idempotent per tick).

Read-check-apply: decisions are applied against a fresh read; a job that vanished, is no
longer pending or changed what it asks for is skipped, as is a start on a node that is no
longer up or no longer has room, each with the reason.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from typing import Any

from worker.contracts import KNOWN_GPU_SPEEDS
from worker.contracts.clusters import (
    AppliedDecision,
    ClusterConfig,
    ClusterDecision,
    ClusterJob,
    ClusterNode,
    ClusterPlan,
    ClusterSnapshot,
    JobRequest,
    NodeState,
    SkippedJob,
)

MARK_PREFIX = "rlsched:"
MAX_PRIORITY = 0xFFFFFFFD
"""Slurm's largest settable priority (NO_VAL and INFINITE are above)."""
DEFAULT_RUNTIME_S = 3600.0
"""The runtime estimate of a job with no time limit."""
COMMAND_TIMEOUT_S = 20.0


class SlurmUnavailable(RuntimeError):
    """The controller did not answer (or refused us): the tick is retried."""


class SlurmClient:
    """Slurm's command-line clients against one slurm.conf."""

    def __init__(self, conf: str, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        self.conf = conf
        self._env = {**os.environ, "SLURM_CONF": conf}
        self._timeout = timeout_s

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        if not os.path.isfile(self.conf):  # Slurm's clients would hunt for a controller for ages
            raise SlurmUnavailable(f"no slurm.conf at {self.conf} on this worker")
        try:
            return subprocess.run(args, env=self._env, capture_output=True, text=True, timeout=self._timeout)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SlurmUnavailable(f"{args[0]} against {self.conf}: {error}") from error

    def json(self, *args: str) -> dict[str, Any]:
        """A client's JSON output. An unreachable controller is an error even when the
        client exits 0: 22.05's `sinfo --json` then prints no nodes and an `errors` list."""
        done = self.run(*args, "--json")
        if done.returncode != 0:
            raise SlurmUnavailable(
                f"{' '.join(args)} --json failed ({done.returncode}): {done.stderr.strip()}"
            )
        data = json.loads(done.stdout)
        if errors := data.get("errors"):
            detail = "; ".join(str(e.get("error", e)) if isinstance(e, dict) else str(e) for e in errors)
            raise SlurmUnavailable(f"{args[0]} against {self.conf} reported: {detail} (is slurmctld up?)")
        return data

    def update_job(self, job_id: str, fields: dict[str, str]) -> str | None:
        """`scontrol update jobid=.. K=V ...`; returns Slurm's error, or None."""
        done = self.run("scontrol", "update", f"jobid={job_id}", *(f"{k}={v}" for k, v in fields.items()))
        return None if done.returncode == 0 else (done.stderr.strip() or f"scontrol exited {done.returncode}")


# --- reading -----------------------------------------------------------------------------

_GRES = re.compile(r"^gpu(?::(?P<type>[^:]+))?:(?P<count>\d+)")


def parse_gres(text: str) -> tuple[dict[str | None, int], list[str]]:
    """`gpu:p5:8(S:0),gpu:p4:2` -> ({'p5': 8, 'p4': 2}, []): GPUs per type (None: untyped)
    and the other GRES names."""
    gpus: dict[str | None, int] = {}
    others: list[str] = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        entry = entry.removeprefix("gres:").removeprefix("gres/")
        match = _GRES.match(entry)
        if match is None:
            if not entry.startswith("(null)"):
                others.append(entry.split(":")[0])
            continue
        gpu_type = match["type"] if match["type"] not in (None, "(null)") else None
        gpus[gpu_type] = gpus.get(gpu_type, 0) + int(match["count"])
    return gpus, others


def node_state(node: dict[str, Any]) -> NodeState:
    state = str(node.get("state", "")).lower()
    flags = {str(f).upper() for f in node.get("state_flags") or []}
    if state == "down" or flags & {"NOT_RESPONDING", "POWERED_DOWN", "POWERING_DOWN", "FAIL"}:
        return "down"
    if "DRAIN" in flags or state.startswith("drain"):
        return "drain"
    if state in ("idle", "mixed", "allocated"):
        return state  # type: ignore[return-value]
    return "down"  # unknown, future, rebooting...: nothing should be started there


def _known(gpu_type: str | None, config: ClusterConfig) -> bool:
    return gpu_type is not None and (gpu_type in KNOWN_GPU_SPEEDS or gpu_type in config.gpu_speed)


def read_nodes(raw: dict[str, Any], config: ClusterConfig, notes: list[str]) -> list[ClusterNode]:
    nodes: dict[str, ClusterNode] = {}
    for node in raw.get("nodes", []):
        name = str(node["name"])
        if name in nodes or (config.partition and config.partition not in (node.get("partitions") or [])):
            continue
        total, _ = parse_gres(str(node.get("gres") or ""))
        used, _ = parse_gres(str(node.get("gres_used") or ""))
        unknown = sorted(str(t or "untyped") for t, c in total.items() if c and not _known(t, config))
        if unknown:
            notes.append(
                f"node {name}: GPUs of type {', '.join(unknown)} left out (give their speed in gpu_speed)"
            )
        gpus = {t: c for t, c in total.items() if t is not None and _known(t, config)}
        memory = float(node.get("real_memory") or 0) / 1000
        cpus = int(node.get("cpus") or 0)
        nodes[name] = ClusterNode(
            name=name,
            state=node_state(node),
            slurm_state="+".join([str(node.get("state", "")), *map(str, node.get("state_flags") or [])]),
            cpus=cpus,
            free_cpus=max(0, cpus - int(node.get("alloc_cpus") or 0)),
            memory_gb=memory,
            free_memory_gb=max(0.0, memory - float(node.get("alloc_memory") or 0) / 1000),
            gpus=gpus,
            free_gpus={t: max(0, c - used.get(t, 0)) for t, c in gpus.items()},
        )
    return sorted(nodes.values(), key=lambda n: n.name)


def parse_mark(admin_comment: str) -> dict[str, str]:
    """The loop's own mark on a job (`rlsched:action=start,node=n1,tick=t`), or {}."""
    if not admin_comment.startswith(MARK_PREFIX):
        return {}
    pairs = (p.partition("=") for p in admin_comment[len(MARK_PREFIX) :].split(","))
    return {key: value for key, _, value in pairs if key}


def _comment_fields(comment: str) -> dict[str, str]:
    pairs = (p.partition("=") for p in re.split(r"[,;\s]+", comment))
    return {key.lower(): value for key, _, value in pairs if key and value}


def _epoch(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        from datetime import datetime

        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _estimate(text: str, limit_s: float) -> float:
    """The runtime estimate: `estimate=<seconds>` in the job's comment (finer than Slurm's
    whole-minute time limits, and what a user expects rather than a kill bound), at most the
    time limit (Slurm ends the job there); else the time limit."""
    try:
        estimate = float(text)
    except ValueError:
        return limit_s
    return min(estimate, limit_s) if 0 < estimate < float("inf") else limit_s


class _Unexpressible(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _gpu_request(job: dict[str, Any], config: ClusterConfig) -> tuple[int, list[str] | None]:
    per_node, others = parse_gres(str(job.get("tres_per_node") or ""))
    per_job, job_others = parse_gres(str(job.get("tres_per_job") or ""))
    for field in ("tres_per_task", "tres_per_socket"):
        if job.get(field):
            raise _Unexpressible(f"asks for {job[field]} per {field.removeprefix('tres_per_')}")
    if others or job_others:
        raise _Unexpressible(f"asks for GRES the plan does not model: {', '.join(others + job_others)}")
    request = per_node or per_job
    if len(request) > 1:
        raise _Unexpressible("asks for GPUs of several types at once")
    if not request:
        return 0, None
    ((gpu_type, count),) = request.items()
    if gpu_type is None:
        return count, None
    if not _known(gpu_type, config):
        raise _Unexpressible(
            f"asks for GPU type {gpu_type!r}, unknown to the plan (give its speed in gpu_speed)"
        )
    return count, [gpu_type]


def _job_id(job: dict[str, Any]) -> str:
    task = job.get("array_task_id")
    return (
        f"{job['array_job_id']}_{task}"
        if job.get("array_job_id") and task is not None
        else str(job["job_id"])
    )


def _array_size(text: str) -> int:
    size = 0
    for part in filter(None, text.split("%")[0].split(",")):
        low, _, high = part.partition("-")
        size += int(high.split(":")[0]) - int(low) + 1 if high else 1
    return size


def read_job(job: dict[str, Any], config: ClusterConfig, now: float) -> ClusterJob:
    """A pending or running job as the plan sees it; raises _Unexpressible for what it cannot."""
    state = str(job.get("job_state", "")).upper()
    mark = parse_mark(str(job.get("admin_comment") or ""))
    if job.get("het_job_id"):
        raise _Unexpressible("heterogeneous job")
    if job.get("array_task_string"):
        raise _Unexpressible(f"job array with {_array_size(str(job['array_task_string']))} pending tasks")
    if int(job.get("node_count") or 1) > 1:
        raise _Unexpressible(f"asks for {job['node_count']} nodes; the plan places single-node jobs")
    cpus = int(job.get("cpus") or 1)
    if job.get("memory_per_node"):
        memory_mb = float(job["memory_per_node"])
    elif job.get("memory_per_cpu"):
        memory_mb = float(job["memory_per_cpu"]) * cpus
    else:
        memory_mb = 0.0
    gpus, gpu_types = _gpu_request(job, config)
    limit = job.get("time_limit")
    limit_s = (
        float(limit) * 60 if isinstance(limit, int | float) and 0 < limit < 0xFFFFFFFE else DEFAULT_RUNTIME_S
    )
    comment = _comment_fields(str(job.get("comment") or ""))
    estimate_s = _estimate(comment.get("estimate", ""), limit_s)
    deadline = float(job["deadline"]) if job.get("deadline") else None
    if deadline is None and "deadline" in comment:
        deadline = _epoch(comment["deadline"])
    try:
        plan_priority = min(3, max(1, int(comment.get("priority", "2"))))
    except ValueError:
        plan_priority = 2
    required = str(job.get("required_nodes") or "")
    pinned = mark.get("node") if mark.get("action") == "start" and required == mark.get("node") else None
    lease = float(job.get("eligible_time") or 0)
    if state == "PENDING":
        if int(job.get("priority") or 0) == 0:
            raise _Unexpressible(f"held ({job.get('state_reason')})")
        if required and pinned is None:
            raise _Unexpressible(f"asks for nodes {required}; the plan cannot keep a job to given nodes")
        if job.get("excluded_nodes") or job.get("features"):
            raise _Unexpressible("has node constraints (--exclude or --constraint) the plan does not model")
        if str(job.get("state_reason")) in ("Dependency", "DependencyNeverSatisfied"):
            raise _Unexpressible("waits for a dependency")
        if lease > now and mark.get("action") != "defer":
            raise _Unexpressible("asked to begin later (--begin)")
    return ClusterJob(
        id=_job_id(job),
        state="pending" if state == "PENDING" else "running",
        request=JobRequest(
            cpus=cpus,
            memory_gb=memory_mb / 1000,
            gpus=gpus,
            gpu_types=gpu_types,
            time_limit_s=estimate_s,
            partition=str(job.get("partition") or ""),
        ),
        slurm_priority=int(job.get("priority") or 0),
        plan_priority=plan_priority,
        submit_time=float(job.get("submit_time") or now),
        deadline=deadline,
        nodes=[str(job["nodes"])] if state != "PENDING" and job.get("nodes") else [],
        lease_until=lease if state == "PENDING" and mark.get("action") == "defer" and lease > now else None,
        pinned_node=pinned,
        mark=str(job.get("admin_comment") or "") if mark else None,
    )


def read_cluster(config: ClusterConfig, client: SlurmClient | None = None) -> ClusterSnapshot:
    """The controller's nodes and its pending and running jobs, in one snapshot."""
    client = client or SlurmClient(config.endpoint)
    now = time.time()
    notes: list[str] = []
    nodes = read_nodes(client.json("sinfo"), config, notes)
    jobs: list[ClusterJob] = []
    skipped: list[SkippedJob] = []
    top_other = 0
    for job in client.json("squeue").get("jobs", []):
        state = str(job.get("job_state", "")).upper()
        if state not in ("PENDING", "RUNNING", "CONFIGURING"):
            continue
        if config.partition and config.partition not in str(job.get("partition") or "").split(","):
            continue
        if state == "PENDING" and not parse_mark(str(job.get("admin_comment") or "")):
            top_other = max(top_other, int(job.get("priority") or 0))
        try:
            jobs.append(read_job(job, config, now))
        except _Unexpressible as why:
            if str(job.get("job_state", "")).upper() == "PENDING":
                skipped.append(SkippedJob(job_id=_job_id(job), reason=why.reason))
    jobs.sort(key=lambda j: (j.submit_time, j.id))
    return ClusterSnapshot(
        cluster=config.name,
        read_at=now,
        nodes=nodes,
        jobs=jobs,
        skipped=skipped,
        notes=notes,
        top_other_priority=top_other,
    )


# --- applying ----------------------------------------------------------------------------


def _mark(decision: ClusterDecision, tick_id: str) -> str:
    node = f",node={decision.node}" if decision.action == "start" else ""
    return f"{MARK_PREFIX}action={decision.action}{node},tick={tick_id}"


def _priority_base(fresh: ClusterSnapshot, count: int) -> int:
    """Priorities above every pending job the loop does not order, so the plan's order
    wins; computed from jobs without the loop's mark, hence the same on a retry."""
    return min(max(fresh.top_other_priority, 1_000), MAX_PRIORITY - count - 1)


def _fits(job: ClusterJob, node: ClusterNode, used: dict[str, float]) -> str | None:
    """Why `job` no longer fits what is free on `node` (after this tick's earlier starts), or None."""
    request = job.request
    free_cpus = node.free_cpus - used.get("cpus", 0)
    if request.cpus > free_cpus:
        return f"node {node.name} has {free_cpus:g} free CPUs, the job needs {request.cpus}"
    if request.memory_gb > node.free_memory_gb - used.get("memory_gb", 0) + 1e-9:
        return f"node {node.name} no longer has {request.memory_gb:g} GB free"
    if request.gpus:
        types = request.gpu_types or list(node.free_gpus)
        if not any(node.free_gpus.get(t, 0) - used.get(f"gpu:{t}", 0) >= request.gpus for t in types):
            return f"node {node.name} no longer has {request.gpus} free GPUs of type {'/'.join(types)}"
    return None


def _use(job: ClusterJob, node: ClusterNode, used: dict[str, float]) -> None:
    request = job.request
    used["cpus"] = used.get("cpus", 0) + request.cpus
    used["memory_gb"] = used.get("memory_gb", 0) + request.memory_gb
    if request.gpus:
        types = request.gpu_types or list(node.free_gpus)
        gpu_type = next(
            t for t in types if node.free_gpus.get(t, 0) - used.get(f"gpu:{t}", 0) >= request.gpus
        )
        used[f"gpu:{gpu_type}"] = used.get(f"gpu:{gpu_type}", 0) + request.gpus


def check_decision(
    decision: ClusterDecision,
    before: ClusterJob | None,
    fresh: ClusterSnapshot,
    used: dict[str, dict[str, float]],
) -> str | None:
    """Why `decision` may no longer be applied to the fresh state, or None."""
    now_job = next((j for j in fresh.jobs if j.id == decision.job_id), None)
    if before is None:
        return "not in the snapshot the plan was made from"
    if now_job is None:
        skipped = next((s for s in fresh.skipped if s.job_id == decision.job_id), None)
        return f"changed: {skipped.reason}" if skipped else "gone (finished or cancelled)"
    if now_job.state != "pending":
        return f"no longer pending ({now_job.state} on {', '.join(now_job.nodes) or '?'})"
    if now_job.request != before.request:
        return "its request changed since the read"
    if decision.action == "start":
        node = next((n for n in fresh.nodes if n.name == decision.node), None)
        if node is None:
            return f"node {decision.node} is gone"
        if not node.takes_jobs:
            return f"node {node.name} is {node.slurm_state}"
        return _fits(now_job, node, used.setdefault(node.name, {}))
    return None


def apply_plan(
    config: ClusterConfig,
    snapshot: ClusterSnapshot,
    plan: ClusterPlan,
    tick_id: str,
    client: SlurmClient | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[AppliedDecision]:
    """Read again, check each decision against the fresh state, and (in `enforce`) write
    the ones that still hold; `progress` hears how many are done after each. Never raises
    for one job; raises SlurmUnavailable when the controller cannot be read (the activity
    is retried)."""
    client = client or SlurmClient(config.endpoint)
    fresh = read_cluster(config, client)
    before = {j.id: j for j in snapshot.jobs}
    current = {j.id: j for j in fresh.jobs}
    base = _priority_base(fresh, len(plan.decisions))
    used: dict[str, dict[str, float]] = {}
    results: list[AppliedDecision] = []
    for decision in sorted(plan.decisions, key=lambda d: d.rank):
        result = AppliedDecision(
            job_id=decision.job_id, action=decision.action, node=decision.node, outcome="skipped"
        )
        mark = _mark(decision, tick_id)
        job = current.get(decision.job_id)
        if job is not None and job.mark == mark:
            results.append(
                result.model_copy(update={"outcome": "unchanged", "reason": "applied by this tick before"})
            )
            continue
        problem = check_decision(decision, before.get(decision.job_id), fresh, used)
        if problem is not None:
            results.append(result.model_copy(update={"reason": problem}))
            continue
        if decision.action == "start":
            node = next(n for n in fresh.nodes if n.name == decision.node)
            _use(current[decision.job_id], node, used[node.name])
        if config.mode == "advise":
            results.append(result.model_copy(update={"outcome": "advised"}))
            continue
        fields = {"Priority": str(base + len(plan.decisions) - decision.rank), "AdminComment": mark}
        if decision.action == "start":
            fields |= {"ReqNodeList": str(decision.node), "StartTime": "now"}
        else:
            fields["StartTime"] = f"now+{max(1, round(config.lease))}"
            if job is not None and job.pinned_node:
                fields["ReqNodeList"] = ""  # the loop's own pin from an earlier tick
        error = client.update_job(decision.job_id, fields)
        results.append(
            result.model_copy(update={"outcome": "skipped", "reason": f"Slurm refused: {error}"})
            if error
            else result.model_copy(update={"outcome": "applied"})
        )
        if progress is not None:
            progress(len(results))
    return results
