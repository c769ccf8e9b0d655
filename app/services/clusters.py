"""Registered clusters: check that a cluster answers (through the worker: the app never
runs Slurm's clients), start its ClusterLoopWorkflow, keep its index row and decision
history current from the loop's `status` query and describe(), and end the loop.

The loop has no stop signal, so DELETE cancels it: a tick cut short leaves Slurm
consistent (each decision is one `scontrol update`, and a deferred job's lease runs out
by itself), and Slurm goes on scheduling on its own. The index is synced just before the
cancel so the ticks recorded until then stay in the history."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from app.core.config import Settings
from app.db import roll_back
from app.errors import Conflict, NotFound, ProblemError, Unavailable, Unprocessable
from app.models import (
    LIVE_CLUSTER_STATUSES,
    Cluster,
    ClusterCreate,
    ClusterDecisionsPage,
    ClusterPublic,
    ClusterRegistered,
    ClustersPublic,
    ClusterStopping,
    ClusterTick,
    utcnow,
)
from app.services.runs import failure_message
from app.services.temporal import TemporalGateway, rpc_timeout
from worker.contracts.clusters import (
    CLUSTER_LOOP_WORKFLOW,
    CLUSTER_PROBE_WORKFLOW,
    CLUSTER_STATUS_QUERY,
    ClusterConfig,
    ClusterLoopInput,
    ClusterLoopStatus,
    ClusterProbe,
    ClusterProbeInput,
    ClusterSettings,
    TickRecord,
    cluster_workflow_id,
)

log = logging.getLogger(__name__)

PROBE_READS = 2
"""sinfo then squeue (worker/workflows/cluster_probe.py)."""
PROBE_SLACK_S = 10.0
"""Beyond the reads themselves: dispatching a workflow and its activity to the worker."""
_ENDED = {
    WorkflowExecutionStatus.CANCELED: "stopped",
    WorkflowExecutionStatus.TERMINATED: "stopped",
    WorkflowExecutionStatus.COMPLETED: "stopped",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
}


def endpoint_problem(endpoint: str, settings: Settings) -> str | None:
    """Why the operator's allow-list (RLSCHED_CLUSTER_ENDPOINTS) refuses `endpoint`, or None."""
    allowed = settings.allowed_cluster_endpoints
    if not allowed:
        return (
            "no cluster endpoint is allowed on this server: the operator lists the slurm.conf files "
            "(or directories holding them) the worker may read in RLSCHED_CLUSTER_ENDPOINTS, "
            "comma-separated, e.g. RLSCHED_CLUSTER_ENDPOINTS=/etc/slurm/slurm.conf"
        )
    if any(endpoint == entry or endpoint.startswith(entry.rstrip("/") + "/") for entry in allowed):
        return None
    return (
        f"endpoint {endpoint[:200]!r} is not allowed: it must be one of, or lie under, "
        f"RLSCHED_CLUSTER_ENDPOINTS ({', '.join(allowed)[:500]})"
    )


def get_row(session: Session, name: str) -> Cluster:
    row = session.get(Cluster, name)
    if row is None:
        raise NotFound(f"no cluster {name!r} is registered; GET /clusters lists them")
    return row


def public(row: Cluster, last_tick: TickRecord | None, stale: bool = False) -> ClusterPublic:
    return ClusterPublic(
        name=row.name,
        kind="slurm",
        endpoint=row.endpoint,
        policy_class=row.policy_class,
        interval_s=row.interval_s,
        mode=row.mode,  # type: ignore[arg-type]
        partition=row.partition,
        workflow_id=row.workflow_id,
        status=row.status,  # type: ignore[arg-type]
        ticks=row.ticks,
        failed_ticks=row.failed_ticks,
        outcomes=dict(row.outcomes or {}),
        last_tick=last_tick,
        error=row.error,
        created_at=row.created_at,
        stopped_at=row.stopped_at,
        synced_at=row.synced_at,
        stale=stale,
    )


def _last_tick(session: Session, name: str) -> TickRecord | None:
    tick = session.exec(
        select(ClusterTick).where(ClusterTick.cluster == name).order_by(col(ClusterTick.tick).desc()).limit(1)
    ).first()
    return TickRecord.model_validate(tick.record) if tick is not None else None


def cluster_detail(session: Session, row: Cluster, stale: bool = False) -> ClusterPublic:
    return public(row, _last_tick(session, row.name), stale)


def list_clusters(session: Session, offset: int, limit: int) -> ClustersPublic:
    total = session.exec(select(func.count()).select_from(Cluster)).one()
    rows = session.exec(
        select(Cluster)
        .order_by(col(Cluster.created_at).desc(), col(Cluster.name))
        .offset(offset)
        .limit(limit)
    ).all()
    return ClustersPublic(data=[cluster_detail(session, r) for r in rows], count=total)


def decisions_page(session: Session, row: Cluster, offset: int, limit: int) -> ClusterDecisionsPage:
    where = ClusterTick.cluster == row.name
    total = session.exec(select(func.count()).select_from(ClusterTick).where(where)).one()
    ticks = session.exec(
        select(ClusterTick).where(where).order_by(col(ClusterTick.tick).desc()).offset(offset).limit(limit)
    ).all()
    return ClusterDecisionsPage(
        data=[TickRecord.model_validate(t.record) for t in ticks],
        count=total,
        next_offset=offset + len(ticks) if offset + len(ticks) < total else None,
    )


def loop_config(body: ClusterCreate) -> ClusterConfig:
    return ClusterConfig(**body.model_dump(include=set(ClusterSettings.model_fields)))


async def register(
    session: Session, temporal: TemporalGateway, settings: Settings, body: ClusterCreate
) -> ClusterRegistered:
    """Check the endpoint against the allow-list, refuse a name whose loop still runs,
    read the cluster once through the worker, then write the row and start the loop.
    The row is written before the start (so a concurrent registration of the same name
    loses on the primary key) and taken back if Temporal refuses the start."""
    if (problem := endpoint_problem(body.endpoint, settings)) is not None:
        raise Unprocessable(problem, ["body", "endpoint"])
    existing = await run_in_threadpool(session.get, Cluster, body.name)
    if existing is not None and existing.status in LIVE_CLUSTER_STATUSES:
        await refresh_cluster(session, temporal, settings, existing)
        if existing.status in LIVE_CLUSTER_STATUSES:
            raise Conflict(
                f"cluster {body.name!r} is already registered and its loop is {existing.status}; "
                f"DELETE /clusters/{body.name} ends it first"
            )
    config = loop_config(body)
    client = await temporal.client()
    probe = await probe_cluster(client, settings, config)
    row = await run_in_threadpool(_write_registration, session, existing, config)
    try:
        await client.start_workflow(
            CLUSTER_LOOP_WORKFLOW,
            ClusterLoopInput(config=config),
            id=row.workflow_id,
            task_queue=settings.inference_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            rpc_timeout=rpc_timeout(settings),
        )
    except WorkflowAlreadyStartedError as error:
        # A loop of this name runs that the index did not know of (another app instance,
        # a restored database): index the loop as it really is, then refuse.
        await refresh_cluster(session, temporal, settings, row)
        raise Conflict(
            f"a loop for cluster {body.name!r} is already running on Temporal ({row.workflow_id}); "
            f"DELETE /clusters/{body.name} ends it first"
        ) from error
    except (RPCError, RPCTimeoutOrCancelledError) as error:
        await run_in_threadpool(_forget, session, row)
        raise Unavailable(f"could not start the cluster's loop on Temporal: {error}") from error
    return ClusterRegistered(**public(row, None).model_dump(), probe=probe)


async def probe_cluster(client: Client, settings: Settings, config: ClusterConfig) -> ClusterProbe:
    """Read the cluster once through a worker of the inference queue; 422 naming the
    endpoint when the worker has no such file, 503 when the controller does not answer
    (or refuses the worker) or no worker answers in time."""
    timeout_s = settings.cluster_probe_timeout_s
    budget = PROBE_READS * timeout_s + PROBE_SLACK_S
    try:
        probe = await asyncio.wait_for(
            client.execute_workflow(
                CLUSTER_PROBE_WORKFLOW,
                ClusterProbeInput(config=config, timeout_s=timeout_s),
                id=f"cluster-probe-{config.name}-{uuid.uuid4().hex[:8]}",
                task_queue=settings.inference_queue,
                execution_timeout=timedelta(seconds=budget),
                result_type=ClusterProbe,
                rpc_timeout=rpc_timeout(settings),
            ),
            budget + 2,
        )
    except WorkflowFailureError as error:
        if not _timed_out(error):
            raise Unavailable(
                f"the check of cluster {config.name!r} failed on the worker: {failure_message(error)}"
            ) from error
        raise _no_worker(config, settings, budget) from error
    except TimeoutError as error:
        raise _no_worker(config, settings, budget) from error
    except (RPCError, RPCTimeoutOrCancelledError) as error:
        raise Unavailable(f"Temporal did not start the cluster check: {error}") from error
    if probe.reachable:
        return probe
    detail = (probe.detail or "")[:1000]
    if probe.cause == "endpoint":
        raise Unprocessable(f"cluster {config.name!r} cannot be reached: {detail}", ["body", "endpoint"])
    raise Unavailable(f"cluster {config.name!r} cannot be reached: {detail}")


def _timed_out(error: BaseException) -> bool:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, TemporalTimeoutError):
            return True
        cause = cause.__cause__
    return False


def _no_worker(config: ClusterConfig, settings: Settings, budget: float) -> Unavailable:
    return Unavailable(
        f"no worker checked cluster {config.name!r} within {budget:.0f} s: is `rlsched worker` "
        f"serving the {settings.inference_queue} queue?"
    )


def _write_registration(session: Session, existing: Cluster | None, config: ClusterConfig) -> Cluster:
    """A new row, or the ended registration of the same name reset (its history dropped:
    tick numbers start again at 1 in the new loop)."""
    fields = {
        "workflow_id": cluster_workflow_id(config.name),
        "kind": config.kind,
        "endpoint": config.endpoint,
        "policy_class": config.policy_class,
        "interval_s": float(config.interval_s),
        "mode": config.mode,
        "partition": config.partition,
        "config": config.model_dump(mode="json"),
        "status": "running",
        "ticks": 0,
        "failed_ticks": 0,
        "outcomes": {},
        "error": None,
        "created_at": utcnow(),
        "updated_at": utcnow(),
        "synced_at": None,
        "stopped_at": None,
    }
    if existing is None:
        row = Cluster(name=config.name, **fields)
    else:
        session.exec(delete(ClusterTick).where(col(ClusterTick.cluster) == config.name))  # type: ignore[call-overload]
        row = existing
        for key, value in fields.items():
            setattr(row, key, value)
    session.add(row)
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict(f"cluster {config.name!r} was registered by another request just now") from error
    return row


def _forget(session: Session, row: Cluster) -> None:
    session.exec(delete(ClusterTick).where(col(ClusterTick.cluster) == row.name))  # type: ignore[call-overload]
    session.delete(row)
    session.commit()


async def refresh_cluster(
    session: Session,
    temporal: TemporalGateway,
    settings: Settings,
    row: Cluster,
    budget_s: float | None = None,
) -> bool:
    """Bring the row and its history up to date from the loop. Returns False when
    Temporal (or the worker, for the query) did not answer within `budget_s`."""
    if row.status not in LIVE_CLUSTER_STATUSES:
        return True
    try:
        client = await temporal.client()
        await asyncio.wait_for(
            _sync(session, client, settings, row), budget_s or settings.temporal_rpc_timeout_s
        )
    except (ProblemError, RPCError, RPCTimeoutOrCancelledError, TimeoutError, IntegrityError) as error:
        await run_in_threadpool(roll_back, session, row)
        log.debug("refresh of cluster %s failed: %s", row.name, error)
        return False
    return True


async def _sync(session: Session, client: Client, settings: Settings, row: Cluster) -> None:
    handle = client.get_workflow_handle(row.workflow_id)
    timeout = rpc_timeout(settings)
    try:
        description = await handle.describe(rpc_timeout=timeout)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        row.status, row.error = "stopped", "the loop no longer exists on Temporal (retention expired?)"
        row.stopped_at = row.stopped_at or utcnow()
        await run_in_threadpool(_save, session, row, None)
        return
    status: ClusterLoopStatus | None = None
    if description.status == WorkflowExecutionStatus.RUNNING:
        status = await handle.query(CLUSTER_STATUS_QUERY, result_type=ClusterLoopStatus, rpc_timeout=timeout)
    elif description.status in _ENDED:
        row.status = _ENDED[description.status]
        row.stopped_at = description.close_time or utcnow()
        if description.status == WorkflowExecutionStatus.TERMINATED:
            row.error = row.error or "terminated on Temporal"
        elif row.status == "failed":
            row.error = f"the loop's workflow ended {description.status.name.lower()}"
    await run_in_threadpool(_save, session, row, status)


def _save(session: Session, row: Cluster, status: ClusterLoopStatus | None) -> None:
    if status is not None:
        config = status.config
        row.config = config.model_dump(mode="json")
        row.endpoint, row.policy_class, row.mode = config.endpoint, config.policy_class, config.mode
        row.interval_s, row.partition = float(config.interval_s), config.partition
        row.ticks, row.failed_ticks = status.ticks, status.failed_ticks
        _index_ticks(session, row, status.history)
    row.updated_at = row.synced_at = utcnow()
    session.add(row)
    session.commit()


def _index_ticks(session: Session, row: Cluster, history: Sequence[TickRecord]) -> None:
    """Insert the ticks newer than the newest indexed one and count their outcomes. The
    row is locked first (PostgreSQL; SQLite has one writer at a time), so the counts and
    the newest tick are read as a concurrent writer (a read racing the reconciler, or a
    second app) left them; one that inserts the same ticks anyway fails on the primary key,
    and the caller rolls back."""
    counted = session.exec(select(Cluster.outcomes).where(Cluster.name == row.name).with_for_update()).one()
    newest = session.exec(select(func.max(ClusterTick.tick)).where(ClusterTick.cluster == row.name)).one()
    outcomes = dict(counted or {})
    for record in history:
        if newest is not None and record.tick <= newest:
            continue
        session.add(
            ClusterTick(
                cluster=row.name, tick=record.tick, at=record.at, record=record.model_dump(mode="json")
            )
        )
        for decision in record.decisions:
            outcomes[decision.outcome] = outcomes.get(decision.outcome, 0) + 1
    row.outcomes = outcomes


async def stop_cluster(
    session: Session, temporal: TemporalGateway, settings: Settings, row: Cluster
) -> ClusterStopping:
    if row.status not in LIVE_CLUSTER_STATUSES:
        raise Conflict(f"cluster {row.name!r}'s loop has already ended ({row.status}); nothing to stop")
    await refresh_cluster(session, temporal, settings, row)  # keep the ticks recorded so far
    if row.status not in LIVE_CLUSTER_STATUSES:
        raise Conflict(f"cluster {row.name!r}'s loop has already ended ({row.status}); nothing to stop")
    client = await temporal.client()
    try:
        await client.get_workflow_handle(row.workflow_id).cancel(rpc_timeout=rpc_timeout(settings))
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            await refresh_cluster(session, temporal, settings, row)
            raise Conflict(f"cluster {row.name!r}'s loop has already ended; nothing to stop") from error
        raise Unavailable(f"Temporal did not accept the cancellation: {error.message}") from error
    except RPCTimeoutOrCancelledError as error:
        raise Unavailable(f"Temporal did not answer the cancellation: {error}") from error
    row.status = "stopping"
    await run_in_threadpool(_save, session, row, None)
    return ClusterStopping(name=row.name, status="stopping")


def _live_names(session: Session) -> list[str]:
    return list(
        session.exec(select(Cluster.name).where(col(Cluster.status).in_(LIVE_CLUSTER_STATUSES))).all()
    )


async def refresh_live_clusters(session: Session, temporal: TemporalGateway, settings: Settings) -> int:
    """The reconciler's part: refresh every live loop; returns how many answered."""
    refreshed = 0
    for name in await run_in_threadpool(_live_names, session):
        row = await run_in_threadpool(session.get, Cluster, name)
        if row is not None:
            refreshed += await refresh_cluster(session, temporal, settings, row)
    return refreshed
