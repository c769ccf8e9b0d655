"""Recurring training on Temporal Schedules: a schedule's action starts the ordinary
TrainingLoopWorkflow on the training queue, so Temporal (not a loop of ours) decides when
runs start, pauses, triggers and survives restarts.

The index keeps a row per schedule (its definition and the run body) and indexes the runs
it fires as ordinary runs with a `schedule_id`: `index_fired_runs` finds them on Temporal
(the `TemporalScheduledById` search attribute the server sets on every fired workflow),
takes the run body from the workflow's memo and the run id from its workflow id
(`scheduled_run_id`, which the workflow uses too), and inserts each once (deterministic
primary key, unique workflow id). Paused, next and recent actions are read from Temporal
on every GET: Temporal is the source of truth for a schedule's state."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, func, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecution,
)
from temporalio.service import RPCError, RPCStatusCode

from app.core.config import Settings
from app.core.durations import format_duration, parse_duration
from app.db import commit_row, delete_row, insert_row, roll_back
from app.errors import Conflict, NotFound, ProblemError, Unavailable, Unprocessable
from app.models import (
    OverlapPolicy,
    Run,
    ScheduledRunPublic,
    ScheduleTriggered,
    TrainingRunCreate,
    TrainingSchedule,
    TrainingScheduleCreate,
    TrainingSchedulePublic,
    TrainingSchedulesPublic,
    TrainingScheduleState,
)
from app.services.runs import resume_location, training_config
from app.services.temporal import TemporalGateway, rpc_timeout
from worker.contracts import (
    SCHEDULE_ID_MEMO,
    SCHEDULE_RUN_MEMO,
    TRAINING_LOOP_WORKFLOW,
    scheduled_run_id,
    training_schedule_id,
)

log = logging.getLogger(__name__)

VISIBILITY_LOOKBACK = timedelta(minutes=10)
"""A reconcile pass lists fired runs started after the newest one indexed minus this:
visibility is eventually consistent, and the list stays short for an old schedule."""
MAX_CATCHUP = timedelta(hours=1)
"""Runs missed while Temporal was down are started on its return only within this window
(Temporal's default is a year: an interval schedule would start a flood)."""
MIN_CATCHUP = timedelta(seconds=10)
"""Temporal's smallest catch-up window."""


def _overlap(name: str) -> ScheduleOverlapPolicy:
    return ScheduleOverlapPolicy[name.upper()]


def _spec(row: TrainingSchedule) -> ScheduleSpec:
    jitter = timedelta(seconds=row.jitter_s) if row.jitter_s else None
    if row.cron is not None:
        return ScheduleSpec(cron_expressions=[row.cron], jitter=jitter)
    return ScheduleSpec(
        intervals=[ScheduleIntervalSpec(every=timedelta(seconds=row.every_s or 0))], jitter=jitter
    )


def _catchup(row: TrainingSchedule) -> timedelta:
    """About one missed start at most for an interval; an hour for a cron schedule."""
    if row.every_s is None:
        return MAX_CATCHUP
    return max(MIN_CATCHUP, min(MAX_CATCHUP, timedelta(seconds=row.every_s)))


def _unavailable(error: BaseException) -> Unavailable:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return Unavailable(f"Temporal did not answer about the schedule: {message}")


def get_row(session: Session, schedule_id: str) -> TrainingSchedule:
    row = session.get(TrainingSchedule, schedule_id)
    if row is None:
        raise NotFound(f"no training schedule {schedule_id!r}; GET /training-schedules lists them")
    return row


async def _forget(session: Session, row: TrainingSchedule) -> NotFound:
    """Temporal no longer knows the schedule (deleted outside the API): neither does the
    index. Its runs stay, with their schedule_id."""
    await run_in_threadpool(delete_row, session, row)
    return NotFound(
        f"training schedule {row.id!r} no longer exists on Temporal (deleted outside the API); "
        "its runs are still listed under GET /training-runs?schedule_id=" + row.id
    )


async def create_schedule(
    session: Session, temporal: TemporalGateway, settings: Settings, body: TrainingScheduleCreate
) -> TrainingSchedulePublic:
    """The row is written first, so the reconciler can index a run fired the instant the
    schedule exists; it is removed again if Temporal refuses or cannot be reached."""
    resume_from = await run_in_threadpool(
        resume_location, session, body.run, ["body", "run", "resume_from_checkpoint"]
    )
    client = await temporal.client()
    schedule_id = uuid.uuid4().hex[:12]
    row = TrainingSchedule(
        id=schedule_id,
        name=body.name,
        temporal_id=training_schedule_id(schedule_id),
        every_s=int(parse_duration(body.every).total_seconds()) if body.every else None,
        cron=body.cron,
        jitter_s=int(parse_duration(body.jitter).total_seconds()) if body.jitter else None,
        overlap=body.overlap,
        run=body.run.model_dump(mode="json"),
    )
    await run_in_threadpool(commit_row, session, row)
    action = ScheduleActionStartWorkflow(
        TRAINING_LOOP_WORKFLOW,
        training_config(body.run, "", resume_from),
        id=row.temporal_id,
        task_queue=settings.training_queue,
        memo={SCHEDULE_RUN_MEMO: row.run, SCHEDULE_ID_MEMO: schedule_id},
    )
    schedule = Schedule(
        action=action,
        spec=_spec(row),
        policy=SchedulePolicy(overlap=_overlap(row.overlap), catchup_window=_catchup(row)),
        state=ScheduleState(paused=body.paused, note="created paused" if body.paused else None),
    )
    try:
        await client.create_schedule(row.temporal_id, schedule, rpc_timeout=rpc_timeout(settings))
    except (RPCError, RPCTimeoutOrCancelledError, ScheduleAlreadyRunningError) as error:
        await run_in_threadpool(delete_row, session, row)
        if isinstance(error, ScheduleAlreadyRunningError):
            raise Conflict(f"a schedule {row.temporal_id!r} already exists on Temporal") from error
        if isinstance(error, RPCError) and error.status == RPCStatusCode.INVALID_ARGUMENT:
            field = "cron" if row.cron is not None else "every"
            raise Unprocessable(f"Temporal refused the schedule: {error.message}", ["body", field]) from error
        raise _unavailable(error) from error
    return await read_schedule(session, temporal, settings, row)


def _run_ref(execution: ScheduleActionExecutionStartWorkflow) -> ScheduledRunPublic:
    return ScheduledRunPublic(
        run_id=scheduled_run_id(execution.workflow_id), workflow_id=execution.workflow_id
    )


def _state(description: ScheduleDescription) -> TrainingScheduleState:
    info = description.info
    recent = []
    for result in info.recent_actions:
        if isinstance(result.action, ScheduleActionExecutionStartWorkflow):
            ref = _run_ref(result.action)
            ref.scheduled_at, ref.started_at = result.scheduled_at, result.started_at
            recent.append(ref)
    return TrainingScheduleState(
        paused=description.schedule.state.paused,
        note=description.schedule.state.note,
        next_action_times=list(info.next_action_times),
        recent_actions=recent,
        running=[
            _run_ref(a) for a in info.running_actions if isinstance(a, ScheduleActionExecutionStartWorkflow)
        ],
        actions=info.num_actions,
        skipped_overlap=info.num_actions_skipped_overlap,
    )


def _public(
    row: TrainingSchedule, state: TrainingScheduleState | None, stale: bool = False
) -> TrainingSchedulePublic:
    return TrainingSchedulePublic(
        id=row.id,
        name=row.name,
        temporal_schedule_id=row.temporal_id,
        every=format_duration(row.every_s) if row.every_s is not None else None,
        cron=row.cron,
        jitter=format_duration(row.jitter_s) if row.jitter_s else None,
        overlap=row.overlap,  # type: ignore[arg-type]
        run=row.run,
        created_at=row.created_at,
        state=state,
        stale=stale,
    )


def _fired_ids(description: ScheduleDescription) -> list[str]:
    ids = [
        r.action.workflow_id
        for r in description.info.recent_actions
        if isinstance(r.action, ScheduleActionExecutionStartWorkflow)
    ]
    ids += [
        a.workflow_id
        for a in description.info.running_actions
        if isinstance(a, ScheduleActionExecutionStartWorkflow)
    ]
    return ids


async def read_schedule(
    session: Session, temporal: TemporalGateway, settings: Settings, row: TrainingSchedule
) -> TrainingSchedulePublic:
    """The row with Temporal's state; `stale` (state null) when Temporal cannot answer.
    Runs Temporal reports as recently started are indexed on the way, so a client that
    reads the schedule then lists its runs sees them even between reconciler passes."""
    try:
        client = await temporal.client()
        description = await client.get_schedule_handle(row.temporal_id).describe(
            rpc_timeout=rpc_timeout(settings)
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise await _forget(session, row) from error
        log.debug("describe of schedule %s failed: %s", row.id, error)
        return _public(row, None, stale=True)
    except (Unavailable, RPCTimeoutOrCancelledError) as error:
        log.debug("describe of schedule %s failed: %s", row.id, error)
        return _public(row, None, stale=True)
    try:
        await index_fired_runs(session, client, settings, row, _fired_ids(description))
    except (RPCError, RPCTimeoutOrCancelledError) as error:  # the reconciler tries again
        await run_in_threadpool(roll_back, session, row)
        log.debug("indexing runs of schedule %s failed: %s", row.id, error)
    return _public(row, _state(description))


async def list_schedules(
    session: Session, temporal: TemporalGateway, settings: Settings, offset: int, limit: int
) -> TrainingSchedulesPublic:
    total, rows = await run_in_threadpool(_rows_page, session, offset, limit)
    out: list[TrainingSchedulePublic] = []
    for row in rows:  # one session: sequential; each describe is a few ms
        try:
            out.append(await read_schedule(session, temporal, settings, row))
        except NotFound:
            total -= 1
    return TrainingSchedulesPublic(data=out, count=total)


def _rows_page(session: Session, offset: int, limit: int) -> tuple[int, Sequence[TrainingSchedule]]:
    total = session.exec(select(func.count()).select_from(TrainingSchedule)).one()
    rows = session.exec(
        select(TrainingSchedule)
        .order_by(col(TrainingSchedule.created_at).desc(), col(TrainingSchedule.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return total, rows


async def _send(session: Session, row: TrainingSchedule, command: Awaitable[None]) -> None:
    """A command to the schedule on Temporal: 404 (and the row forgotten) when Temporal no
    longer knows the schedule, 503 when Temporal does not answer."""
    try:
        await command
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise await _forget(session, row) from error
        raise _unavailable(error) from error
    except RPCTimeoutOrCancelledError as error:
        raise _unavailable(error) from error


async def set_paused(
    session: Session,
    temporal: TemporalGateway,
    settings: Settings,
    row: TrainingSchedule,
    paused: bool,
    note: str | None,
) -> TrainingSchedulePublic:
    client = await temporal.client()
    handle = client.get_schedule_handle(row.temporal_id)
    if paused:
        command = handle.pause(note=note or "paused via the API", rpc_timeout=rpc_timeout(settings))
    else:
        command = handle.unpause(note=note or "unpaused via the API", rpc_timeout=rpc_timeout(settings))
    await _send(session, row, command)
    return await read_schedule(session, temporal, settings, row)


async def trigger(
    session: Session,
    temporal: TemporalGateway,
    settings: Settings,
    row: TrainingSchedule,
    overlap: OverlapPolicy,
) -> ScheduleTriggered:
    """Temporal answers before the run starts and says nothing of it: the run shows in
    the schedule's recent actions and in GET /training-runs?schedule_id= a moment later."""
    client = await temporal.client()
    handle = client.get_schedule_handle(row.temporal_id)
    await _send(session, row, handle.trigger(overlap=_overlap(overlap), rpc_timeout=rpc_timeout(settings)))
    return ScheduleTriggered(id=row.id, overlap=overlap)


async def delete_schedule(
    session: Session, temporal: TemporalGateway, settings: Settings, row: TrainingSchedule
) -> None:
    """Delete on Temporal, then index every run the schedule fired that the index lacks
    (the last describe names the newest, which visibility may not list yet), then drop
    the row. Runs already started keep going; they keep their schedule_id."""
    client = await temporal.client()
    handle = client.get_schedule_handle(row.temporal_id)
    fired: list[str] = []
    try:
        fired = _fired_ids(await handle.describe(rpc_timeout=rpc_timeout(settings)))
        await handle.delete(rpc_timeout=rpc_timeout(settings))
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise _unavailable(error) from error
    except RPCTimeoutOrCancelledError as error:
        raise _unavailable(error) from error
    try:
        await index_fired_runs(session, client, settings, row)
        await index_fired_runs(session, client, settings, row, fired)
    except (RPCError, RPCTimeoutOrCancelledError) as error:
        await run_in_threadpool(roll_back, session, row)
        log.warning("schedule %s deleted; indexing its last runs failed: %s", row.id, error)
    await run_in_threadpool(delete_row, session, row)


async def index_fired_runs(
    session: Session,
    client: Client,
    settings: Settings,
    row: TrainingSchedule,
    workflow_ids: Iterable[str] | None = None,
) -> int:
    """Insert the runs this schedule started that the index lacks; returns how many.
    `workflow_ids` None: list them on Temporal by the schedule's search attribute; else
    describe just those ids (the ones a schedule description names)."""
    known, newest = await run_in_threadpool(_indexed_runs, session, row)
    found: list[WorkflowExecution] = []
    timeout = rpc_timeout(settings)
    if workflow_ids is None:
        query = f'TemporalScheduledById = "{row.temporal_id}"'
        if newest is not None:
            since = (newest if newest.tzinfo else newest.replace(tzinfo=UTC)) - VISIBILITY_LOOKBACK
            query += f' AND StartTime > "{since.strftime("%Y-%m-%dT%H:%M:%SZ")}"'
        async for execution in client.list_workflows(query, rpc_timeout=timeout):
            if execution.id not in known:
                found.append(execution)
    else:
        for workflow_id in dict.fromkeys(workflow_ids):
            if workflow_id in known:
                continue
            try:
                found.append(await client.get_workflow_handle(workflow_id).describe(rpc_timeout=timeout))
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
    runs = []
    for execution in found:
        body = await _run_body(execution, row)
        runs.append(
            Run(
                id=scheduled_run_id(execution.id),
                name=body.get("name"),
                workflow_id=execution.id,
                status="running",  # the next refresh reads the real status, rounds and result
                config=body,
                schedule_id=row.id,
                created_at=execution.start_time or datetime.now(UTC),
            )
        )
    return await run_in_threadpool(_insert_runs, session, row, runs)


def _indexed_runs(session: Session, row: TrainingSchedule) -> tuple[set[str], datetime | None]:
    """The workflow ids of the schedule's runs in the index, and when the newest started."""
    known = set(session.exec(select(Run.workflow_id).where(Run.schedule_id == row.id)).all())
    newest = session.exec(select(func.max(Run.created_at)).where(Run.schedule_id == row.id)).one()
    return known, newest


def _insert_runs(session: Session, row: TrainingSchedule, runs: list[Run]) -> int:
    """How many were new: another app instance may have indexed some first."""
    return sum(insert_row(session, run, row) for run in runs)


async def _run_body(execution: WorkflowExecution, row: TrainingSchedule) -> dict:
    """The fired workflow's memo carries the run body it was started with; the row's
    copy stands in if the memo cannot be read."""
    try:
        memo = await execution.memo()
        body = TrainingRunCreate.model_validate(memo[SCHEDULE_RUN_MEMO])
        return body.model_dump(mode="json")
    except Exception as error:  # an older or foreign memo: the index still gets the run
        log.debug("run %s: memo unreadable (%s); using the schedule's body", execution.id, error)
        return dict(row.run)


def _all_rows(session: Session) -> Sequence[TrainingSchedule]:
    return session.exec(select(TrainingSchedule)).all()


async def index_all_schedules(session: Session, temporal: TemporalGateway, settings: Settings) -> int:
    """The reconciler's part: index newly fired runs of every schedule. A failing
    schedule is logged and skipped; Temporal being down skips the pass."""
    rows = await run_in_threadpool(_all_rows, session)
    if not rows:
        return 0
    try:
        client = await temporal.client()
    except ProblemError:
        return 0
    added = 0
    for row in rows:
        try:
            added += await asyncio.wait_for(
                index_fired_runs(session, client, settings, row), settings.temporal_rpc_timeout_s * 2
            )
        except (RPCError, RPCTimeoutOrCancelledError, TimeoutError) as error:
            await run_in_threadpool(roll_back, session, *rows)
            log.debug("indexing runs of schedule %s failed: %s", row.id, error)
    return added
