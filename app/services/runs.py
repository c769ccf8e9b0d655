"""Training runs: start them on Temporal, stop them, and keep their rows in the index
current from the workflow (query `progress`, describe() for the live heartbeat, the
result once closed). `refresh_run` is what both a read and the reconciler call."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from app.core.config import Settings
from app.db import delete_row, roll_back
from app.errors import Conflict, NotFound, ProblemError, Unavailable, Unprocessable
from app.models import (
    TERMINAL_STATUSES,
    Checkpoint,
    LiveProgress,
    Round,
    RoundPublic,
    Run,
    TrainingRunCreate,
    TrainingRunDetail,
    TrainingRunPublic,
    TrainingRunsPublic,
    utcnow,
)
from app.services.checkpoints import (
    checkpoint_id,
    copy_round_scores,
    get_checkpoint,
    record_checkpoint,
    usable_location,
)
from app.services.history import copy_round_references, record_iterations, record_round
from app.services.policy import offer_round
from app.services.temporal import TemporalGateway
from worker.contracts import (
    TRAINING_LOOP_WORKFLOW,
    StopRequest,
    StopResult,
    TrainingHeartbeat,
    TrainingProgress,
    TrainingRunConfig,
)

log = logging.getLogger(__name__)

_CLOSED_STATUS = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TERMINATED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}


def workflow_id_for(run_id: str) -> str:
    return f"training-run-{run_id}"


def _request_hash(body: TrainingRunCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _public(run: Run) -> TrainingRunPublic:
    live = LiveProgress.model_validate(run.live_progress) if run.live_progress else None
    return TrainingRunPublic.model_validate(
        {**run.model_dump(), "live_progress": live}, from_attributes=False
    )


def resume_location(session: Session, body: TrainingRunCreate, field: list[str | int]) -> str | None:
    """The checkpoint location a run body resumes from; an unknown checkpoint is the
    client's mistake (422 at `field`), not a missing resource."""
    if body.resume_from_checkpoint is None:
        return None
    try:
        return usable_location(get_checkpoint(session, body.resume_from_checkpoint))
    except NotFound as error:
        raise Unprocessable(error.detail, field) from error


def training_config(body: TrainingRunCreate, run_id: str, resume_from: str | None) -> TrainingRunConfig:
    """The workflow input of a run body; `run_id` empty for a schedule's action (each
    fired run derives its id from its workflow id)."""
    return TrainingRunConfig(run_id=run_id, resume_from=resume_from, **body.settings())


async def create_run(
    session: Session,
    temporal: TemporalGateway,
    settings: Settings,
    body: TrainingRunCreate,
    idempotency_key: str | None,
) -> tuple[TrainingRunPublic, bool]:
    """Returns (run, replayed). The row is written first so a retried request with the
    same Idempotency-Key finds it; the workflow id is derived from the run id, so even a
    retry racing the first start cannot make a second workflow."""
    digest = _request_hash(body)
    if idempotency_key is not None:
        replayed = await run_in_threadpool(_replayed_run, session, idempotency_key, digest)
        if replayed is not None:
            return replayed, True
    resume_from = await run_in_threadpool(resume_location, session, body, ["body", "resume_from_checkpoint"])
    client = await temporal.client()
    run_id = uuid.uuid4().hex[:12]
    config = training_config(body, run_id, resume_from)
    run = Run(
        id=run_id,
        name=body.name,
        workflow_id=workflow_id_for(run_id),
        status="running",
        config=body.model_dump(mode="json"),
        idempotency_key=idempotency_key,
        request_hash=digest,
    )
    winner = await run_in_threadpool(_insert_run, session, run)
    if winner is not None:
        return winner, True
    try:
        await client.start_workflow(
            TRAINING_LOOP_WORKFLOW,
            config,
            id=run.workflow_id,
            task_queue=settings.training_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass
    except RPCError as error:
        await run_in_threadpool(delete_row, session, run)
        raise Unavailable(f"could not start the training workflow on Temporal: {error.message}") from error
    return _public(run), False


def _replayed_run(session: Session, idempotency_key: str, digest: str) -> TrainingRunPublic | None:
    """The run an earlier request with this Idempotency-Key started, if any."""
    existing = session.exec(select(Run).where(Run.idempotency_key == idempotency_key)).first()
    if existing is None:
        return None
    if existing.request_hash != digest:
        raise Unprocessable(
            f"Idempotency-Key {idempotency_key!r} was used for a different request body; "
            "use a new key for a new run"
        )
    return _public(existing)


def _insert_run(session: Session, run: Run) -> TrainingRunPublic | None:
    """None once the row is written; the run already there when a concurrent request with
    the same Idempotency-Key won the race."""
    session.add(run)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = session.exec(select(Run).where(Run.idempotency_key == run.idempotency_key)).first()
        if existing is None:
            raise
        return _public(existing)
    return None


def list_runs(
    session: Session, status: str | None, offset: int, limit: int, schedule_id: str | None = None
) -> TrainingRunsPublic:
    query = select(Run)
    count_query = select(func.count()).select_from(Run)
    if status is not None:
        query = query.where(Run.status == status)
        count_query = count_query.where(Run.status == status)
    if schedule_id is not None:
        query = query.where(Run.schedule_id == schedule_id)
        count_query = count_query.where(Run.schedule_id == schedule_id)
    query = query.order_by(col(Run.created_at).desc(), col(Run.id).desc()).offset(offset).limit(limit)
    rows = session.exec(query).all()
    return TrainingRunsPublic(data=[_public(r) for r in rows], count=session.exec(count_query).one())


def get_run_row(session: Session, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no training run {run_id!r}; GET /training-runs lists them")
    return run


def run_detail(session: Session, run: Run, stale: bool = False) -> TrainingRunDetail:
    rounds = session.exec(select(Round).where(Round.run_id == run.id).order_by(col(Round.round))).all()
    return TrainingRunDetail(
        **_public(run).model_dump(),
        rounds=[RoundPublic.model_validate(r, from_attributes=True) for r in rounds],
        stale=stale,
    )


async def refresh_run(
    session: Session, temporal: TemporalGateway, settings: Settings, run: Run, budget_s: float | None = None
) -> bool:
    """Bring one run's row up to date from Temporal. Returns False when Temporal (or the
    worker, for a query) could not answer within `budget_s`; the row is then left as it was."""
    if run.status in TERMINAL_STATUSES:
        return True
    try:
        client = await temporal.client()
        for attempt in (1, 2):
            try:
                await asyncio.wait_for(
                    _sync_from_workflow(session, client, settings, run),
                    budget_s or settings.temporal_rpc_timeout_s,
                )
                break
            except IntegrityError:
                # Another writer (a second app instance's reconciler or read) indexed the
                # same round first; its rows hold what the workflow told us, so apply the
                # progress again on top of them. Twice in a row is not a race: give up.
                await run_in_threadpool(roll_back, session, run)
                if attempt == 2:
                    raise
    except (ProblemError, RPCError, TimeoutError) as error:
        await run_in_threadpool(roll_back, session, run)
        log.debug("refresh of run %s failed: %s", run.id, error)
        return False
    except Exception:  # a read must still answer from the index; the log has the cause
        await run_in_threadpool(roll_back, session, run)
        log.exception("refresh of run %s failed", run.id)
        return False
    return True


async def _sync_from_workflow(session: Session, client: Client, settings: Settings, run: Run) -> None:
    handle = client.get_workflow_handle(run.workflow_id, result_type=TrainingProgress)
    timeout = timedelta(seconds=settings.temporal_rpc_timeout_s)
    try:
        description = await handle.describe(rpc_timeout=timeout)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            run.status, run.error = "failed", "the workflow no longer exists on Temporal (retention expired?)"
            run.finished_at = run.finished_at or utcnow()
            await run_in_threadpool(_save, session, run)
            return
        raise
    status = description.status
    progress: TrainingProgress | None = None
    live: TrainingHeartbeat | None = None
    if status == WorkflowExecutionStatus.RUNNING:
        progress = await handle.query("progress", result_type=TrainingProgress, rpc_timeout=timeout)
        live = await _heartbeat(client, description.raw_description.pending_activities)
        run.status = "stopping" if progress.status == "stopping" else "running"
        run.error = retrying_activity(description.raw_description.pending_activities)
    elif status == WorkflowExecutionStatus.COMPLETED:
        progress = await handle.result(rpc_timeout=timeout)
        # A retry's error seen by an earlier refresh is stale once the workflow completed:
        # without this it stuck when the retry succeeded and the run ended between refreshes.
        run.status, run.error = "completed", None
    elif status in _CLOSED_STATUS:
        run.status = _CLOSED_STATUS[status]
        try:
            await handle.result(rpc_timeout=timeout)
        except WorkflowFailureError as failure:
            run.error = failure_message(failure)[:4000]
        except Exception as error:  # the status already says it ended; the message is a bonus
            run.error = str(error)[:4000] or run.error
    if run.status in TERMINAL_STATUSES:
        run.finished_at = description.close_time or utcnow()
        run.live_progress = None
        run.current_round = None
    new_checkpoints = await run_in_threadpool(_index, session, run, progress, live)
    if run.config.get("deploy") == "auto":
        for ckpt in new_checkpoints:
            await _offer(client, settings, session, run, ckpt)


async def _offer(client: Client, settings: Settings, session: Session, run: Run, ckpt: Checkpoint) -> None:
    """Auto-deploy is offered once, when the round is first indexed; a failure to reach
    the service workflow is logged and does not fail the index refresh."""
    try:
        await offer_round(client, settings, session, run, ckpt)
    except (ProblemError, RPCError, RPCTimeoutOrCancelledError) as error:
        log.warning("run %s: could not offer %s for deployment: %s", run.id, ckpt.id, error)


def _index(
    session: Session, run: Run, progress: TrainingProgress | None, live: TrainingHeartbeat | None
) -> list[Checkpoint]:
    """Write what the workflow told us; returns the checkpoints of rounds indexed for the first time."""
    new_checkpoints = _apply_progress(session, run, progress) if progress is not None else []
    if live is not None:
        record_iterations(session, run.id, live.round, live.history)
    if run.status not in TERMINAL_STATUSES:
        run.live_progress = (
            LiveProgress(
                round=live.round, iterations_done=live.iterations_done, progress=live.progress
            ).model_dump(mode="json")
            if live is not None
            else None
        )
    _save(session, run)
    return new_checkpoints


def _apply_progress(session: Session, run: Run, progress: TrainingProgress) -> list[Checkpoint]:
    """Index the progress; returns the checkpoints of rounds indexed for the first time."""
    by_location: dict[str, str] = {}
    new: list[Checkpoint] = []
    existing = {r.round: r for r in session.exec(select(Round).where(Round.run_id == run.id)).all()}
    for summary in progress.rounds:
        ckpt = record_checkpoint(session, run, summary)
        by_location[summary.checkpoint] = ckpt.id
        if summary.round not in existing:
            new.append(ckpt)
        row = existing.get(summary.round) or Round(run_id=run.id, round=summary.round)
        row.checkpoint_id = ckpt.id
        copy_round_scores(row, summary)
        copy_round_references(row, summary)
        row.episode_return_mean = summary.episode_return_mean
        row.finished_at = summary.finished_at
        session.add(row)
        if summary.round not in existing or summary.iterations or summary.evaluation is not None:
            record_round(session, run, summary, ckpt.id)
    run.rounds_done = max(progress.rounds_done, len(progress.rounds), run.rounds_done)
    run.current_round = progress.current_round if run.status not in TERMINAL_STATUSES else None
    run.stop_reason = progress.stop_reason or run.stop_reason
    if progress.best_checkpoint:
        run.best_checkpoint_id = by_location.get(progress.best_checkpoint, run.best_checkpoint_id)
        run.best_score = progress.best_score
    elif progress.rounds:
        best = max(progress.rounds, key=lambda s: s.score)
        run.best_checkpoint_id, run.best_score = checkpoint_id(run.id, best.round), best.score
    if progress.latest_checkpoint:
        run.latest_checkpoint_id = by_location.get(progress.latest_checkpoint, run.latest_checkpoint_id)
    elif progress.rounds:
        run.latest_checkpoint_id = checkpoint_id(run.id, progress.rounds[-1].round)
    return new


def failure_message(error: BaseException) -> str:
    """The innermost cause's message: 'Activity task failed' says nothing, the
    activity's own exception (type and message) says what went wrong."""
    parts: list[str] = []
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ApplicationError):
            parts.append(f"{cause.type or 'ApplicationError'}: {cause.message}")
        elif isinstance(cause, ActivityError):
            parts.append(f"activity {cause.activity_type} failed")
        cause = cause.__cause__ if isinstance(cause, FailureError | WorkflowFailureError) else None
    return "; ".join(parts) or str(error)


def _save(session: Session, run: Run) -> None:
    """Commit the run and the rows indexed with it. An IntegrityError (another writer
    recorded the same rounds first) propagates: refresh_run applies the progress again,
    rather than dropping this writer's update of the run with the rolled-back rows."""
    now = datetime.now(UTC)
    run.updated_at = now
    run.synced_at = now
    session.add(run)
    session.commit()


def retrying_activity(pending: object) -> str | None:
    """Why a live run is stuck, if it is: a pending activity that failed and is waiting
    for its retry (a full disk while saving, a corrupt checkpoint). Temporal keeps
    retrying; the run's `error` says so until an attempt succeeds."""
    for activity in pending:  # type: ignore[attr-defined]
        if activity.attempt > 1 and activity.HasField("last_failure"):
            failure = activity.last_failure
            message = failure.message
            if failure.HasField("application_failure_info") and failure.application_failure_info.type:
                message = f"{failure.application_failure_info.type}: {message}"
            return (
                f"{activity.activity_type.name} failed (attempt {activity.attempt - 1}), "
                f"Temporal retries it: {message}"
            )[:4000]
    return None


async def _heartbeat(client: Client, pending: object) -> TrainingHeartbeat | None:
    """The training activity's last heartbeat. Details arrive as raw payloads; decoded
    without a type they are plain dicts, validated here into the contract model."""
    for activity in pending:  # type: ignore[attr-defined]
        payloads = list(activity.heartbeat_details.payloads)
        if not payloads:
            continue
        try:
            values = await client.data_converter.decode(payloads)
            return TrainingHeartbeat.model_validate(values[-1])
        except Exception:  # a different activity's heartbeat, or an older contract
            continue
    return None


async def stop_run(
    session: Session, temporal: TemporalGateway, settings: Settings, run: Run, reason: str | None
) -> StopResult:
    if run.status in TERMINAL_STATUSES:
        raise Conflict(f"training run {run.id} has already ended ({run.status}); nothing to stop")
    if run.status == "stopping":
        raise Conflict(f"training run {run.id} is already stopping; it ends after the current round")
    client = await temporal.client()
    handle = client.get_workflow_handle(run.workflow_id)
    try:
        result = await asyncio.wait_for(
            handle.execute_update("stop", StopRequest(reason=reason), result_type=StopResult),
            settings.temporal_rpc_timeout_s * 2,
        )
    except WorkflowUpdateFailedError as error:
        await refresh_run(session, temporal, settings, run)
        raise Conflict(f"training run {run.id} cannot be stopped: {error.cause}") from error
    except RPCError as error:
        if (
            error.status == RPCStatusCode.NOT_FOUND
            or "closing" in error.message
            or "completed" in error.message
        ):
            await refresh_run(session, temporal, settings, run)
            raise Conflict(f"training run {run.id} has already ended; nothing to stop") from error
        raise Unavailable(f"Temporal did not accept the stop: {error.message}") from error
    except (TimeoutError, RPCTimeoutOrCancelledError) as error:
        raise Unavailable(
            f"no worker answered the stop of run {run.id} in time; is `rlsched worker` running?"
        ) from error
    run.status = "stopping"
    run.stop_reason = reason
    run.rounds_done = max(run.rounds_done, result.rounds_done)
    await run_in_threadpool(_save, session, run)
    return result
