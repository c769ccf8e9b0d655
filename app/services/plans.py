"""Plans (POST /schedule): resolve the policy, run SchedulerWorkflow on the inference queue, wait a
bounded time, and record the request in the index. With `schedule_mode=service` a
synchronous plan is an update to one long-lived workflow instead (see _plan_via_service).

The synchronous path writes its row once, after the plan is back (one SQLite commit per
request); only an async request or a timed-out one is written before its result exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from datetime import timedelta
from typing import Any, NoReturn

from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from app.core.config import Settings
from app.db import commit_row
from app.errors import NotFound, ProblemError, Unavailable, Unprocessable
from app.models import Checkpoint, Plan, PlanCreate, PlanPublic, utcnow
from app.services.checkpoints import usable_location
from app.services.policy import current_deployments
from app.services.temporal import TemporalGateway, rpc_timeout
from worker.contracts import (
    HEURISTIC_GRAMMAR,
    HEURISTIC_POLICIES,
    PLAN_UPDATE,
    SCHEDULER_RESTARTING,
    SCHEDULER_SERVICE_WORKFLOW,
    SCHEDULER_WORKFLOW,
    SEARCH_PREFIX,
    PlanInput,
    PlanOutput,
    PolicyRef,
    SearchOptions,
    deployed_note,
    heuristic_problem,
    scheduler_service_id,
    scheduler_service_start,
    search_needs_no_checkpoint,
)

RETRY_PAUSE_S = 0.002
MAX_RETRY_PAUSE_S = 0.05
"""Pauses between resending a plan the service workflow refused while continuing as new
(it is back within a workflow task or two: milliseconds)."""

INPUT_ERROR_TYPES = {"InvalidInput", "CheckpointError", "ValueError"}
PLAN_TIMEOUT = "PlanTimeout"
"""The worker gave up on a plan that outran its time budget: answered 504, like the API's
own timeout."""
"""Application error types the worker raises for input a client can fix: answered 422."""


def resolve_policy(
    session: Session, settings: Settings, name: str
) -> tuple[PolicyRef, int | None, list[str]]:
    """(policy for the worker, the checkpoint's training window if any, notes for the user)
    of a heuristic name or a checkpoint id; `best` is resolve_best's."""
    if heuristic_problem(name) is None:
        return PolicyRef(kind="heuristic", name=name), None, []
    ckpt = session.get(Checkpoint, name)
    if ckpt is None and ("+" in name or ":" in name):  # meant as a composed heuristic
        raise Unprocessable(heuristic_problem(name, "policy") or "", ["body", "policy"])
    if ckpt is None:
        raise Unprocessable(
            f"unknown policy {name!r}: give 'best', a checkpoint id (GET /checkpoints) or a heuristic "
            f"({HEURISTIC_GRAMMAR}: e.g. {', '.join(HEURISTIC_POLICIES)}, edf+fastest, easy:sjf+deadline)",
            ["body", "policy"],
        )
    return PolicyRef(kind="checkpoint", name=ckpt.id, checkpoint=usable_location(ckpt)), ckpt.window, []


async def resolve_best(
    temporal: TemporalGateway, settings: Settings, body: PlanCreate, in_service: bool
) -> tuple[PolicyRef, int | None, list[str], SearchOptions | None]:
    """`best` = the policy deployed for the request's class. A plan to the service workflow
    resolves it there, atomically with the plan (a `deployed` PolicyRef); a workflow per
    request (`async`, schedule_mode=workflow) gets it resolved here from the same state,
    with a deployed search's options."""
    fallback = settings.fallback_heuristic
    if in_service:
        ref = PolicyRef(
            kind="deployed", name=body.policy_class, fallback=fallback, keep_window=body.window is not None
        )
        return ref, None, [], None
    deployed = (await current_deployments(await temporal.client(), settings)).classes.get(body.policy_class)
    note = deployed_note(body.policy_class, deployed, fallback)
    if deployed is None:
        return PolicyRef(kind="heuristic", name=fallback), None, [note], None
    return deployed.ref(), deployed.window, [note], deployed.search


def _public(row: Plan) -> PlanPublic:
    plan: dict[str, Any] = row.result or {}
    return PlanPublic(
        id=row.id,
        workflow_id=row.workflow_id,
        status=row.status,  # type: ignore[arg-type]
        requested_policy=row.requested_policy,
        policy=row.policy,
        checkpoint_id=row.checkpoint_id,
        notes=list(row.notes or []),
        placements=plan.get("placements", []),
        unplaced=plan.get("unplaced", []),
        metrics=plan.get("metrics"),
        baseline=plan.get("baseline"),
        error=row.error,
        elapsed_ms=row.elapsed_ms,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


async def create_plan(
    session: Session,
    temporal: TemporalGateway,
    settings: Settings,
    body: PlanCreate,
    timings: dict[str, float] | None = None,
) -> tuple[PlanPublic, int]:
    """Returns the answer and its status code (200 done, 202 accepted async). `timings`
    collects milliseconds per stage (sent back as a Server-Timing header)."""
    timings = timings if timings is not None else {}
    mark = time.perf_counter()
    use_service = settings.schedule_mode == "service" and not body.run_async
    search = body.search
    if body.policy == "best":
        policy, trained_window, notes, search = await resolve_best(temporal, settings, body, use_service)
    elif body.policy.startswith(SEARCH_PREFIX) and search_needs_no_checkpoint(body.policy):  # no database
        policy, trained_window, notes = PolicyRef(kind="search", name=body.policy), None, []
    elif body.policy.startswith(SEARCH_PREFIX):
        base, trained_window, notes = await run_in_threadpool(
            resolve_policy, session, settings, body.policy.removeprefix(SEARCH_PREFIX)
        )
        name = f"{SEARCH_PREFIX}{base.name}"
        policy = PolicyRef(kind="search", name=name, checkpoint=base.checkpoint)
    elif heuristic_problem(body.policy) is None:  # resolved without the database: no thread hop
        policy, trained_window, notes = resolve_policy(session, settings, body.policy)
    else:
        policy, trained_window, notes = await run_in_threadpool(
            resolve_policy, session, settings, body.policy
        )
    window = body.window or trained_window or (body.synthetic.workload.window if body.synthetic else 32)
    try:
        plan_input = PlanInput(
            nodes=body.nodes,
            jobs=body.jobs,
            synthetic=body.synthetic,
            policy=policy,
            baseline=body.baseline,
            window=window,
            timeout_s=None if body.run_async else settings.schedule_timeout_s,
            search=search,
        )
    except ValidationError as error:  # the contract's checks, should they outgrow PlanCreate's
        raise Unprocessable(f"invalid plan request: {error.errors()[0]['msg']}") from error
    client = await temporal.client()
    request_id = uuid.uuid4().hex[:16]
    instance = service_instance(settings) if use_service else 0
    workflow_id = scheduler_service_id(settings.inference_queue, instance) if use_service else None
    row = Plan(
        id=request_id,
        workflow_id=workflow_id or f"schedule-{request_id}",
        requested_policy=body.policy,
        policy=body.policy if policy.kind == "deployed" else policy.name,
        checkpoint_id=policy.name if policy.kind == "checkpoint" else None,
        nodes=len(body.nodes or []) or (body.synthetic.workload.nodes if body.synthetic else 0),
        jobs=len(body.jobs or []) or (body.synthetic.workload.jobs if body.synthetic else 0),
        notes=notes,
    )
    started = time.perf_counter()
    timings["resolve"] = (started - mark) * 1000
    if use_service:
        output = await _plan_via_service(session, client, settings, row, plan_input, instance)
        timings["wait"] = (time.perf_counter() - started) * 1000
        return await _finish(session, row, output, started, timings)
    try:
        handle: WorkflowHandle[Any, PlanOutput] = await client.start_workflow(
            SCHEDULER_WORKFLOW,
            plan_input,
            id=row.workflow_id,
            task_queue=settings.inference_queue,
            result_type=PlanOutput,
            rpc_timeout=rpc_timeout(settings),
        )
    except RPCError as error:
        raise Unavailable(f"could not start the scheduling workflow on Temporal: {error.message}") from error
    if body.run_async:
        await _save(session, row)
        return _public(row), 202
    try:
        mark = time.perf_counter()
        timings["start"] = (mark - started) * 1000
        output = await asyncio.wait_for(handle.result(), settings.schedule_timeout_s)
        timings["wait"] = (time.perf_counter() - mark) * 1000
    except TimeoutError as error:
        row.status = "running"
        await _save(session, row)
        raise _no_plan_in_time(settings, row, f"the request continues: GET /schedule/{row.id}") from error
    except WorkflowFailureError as error:
        await _record_failure(session, row, error)
    except RPCError as error:
        row.status = "running"
        await _save(session, row)
        raise Unavailable(
            f"lost Temporal while waiting for the plan ({error.message}); GET /schedule/{row.id} later"
        ) from error
    return await _finish(session, row, output, started, timings)


def _no_plan_in_time(settings: Settings, row: Plan, then: str) -> ProblemError:
    return ProblemError(
        504,
        f"no plan within {settings.schedule_timeout_s:g}s (is a worker polling "
        f"{settings.inference_queue!r}?); {then}",
        id=row.id,
        workflow_id=row.workflow_id,
    )


async def _observing(operation: WithStartWorkflowOperation, call: Any, timeout_s: float) -> PlanOutput:
    """Await the update; on failure also observe the operation's start future, which the
    SDK fails alongside and which would otherwise be logged as never retrieved."""
    try:
        return await asyncio.wait_for(call, timeout_s)
    except BaseException:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(operation.workflow_handle(), 0.1)
        raise


async def _finish(
    session: Session, row: Plan, output: PlanOutput, started: float, timings: dict[str, float]
) -> tuple[PlanPublic, int]:
    _record_output(row, output, started)
    mark = time.perf_counter()
    await _save(session, row)
    timings["db"] = (time.perf_counter() - mark) * 1000
    timings["plan"] = output.elapsed_ms
    return _public(row), 200


_next_instance = itertools.count()
_avoid_until: dict[tuple[str, int], float] = {}
"""(queue, instance) -> time.monotonic() until which new plans skip it: it refused a plan because
it is handing over (continue-as-new), and a plan sent there meanwhile would only be
refused again or, racing the hand-over itself, wait ~1 s for the SDK's retry."""
HANDOVER_AVOID_S = 1.0


def service_instance(settings: Settings) -> int:
    """The service workflow this request goes to: round robin over
    `schedule_service_instances` (a workflow runs one workflow task at a time, so plans
    arriving while one is in flight wait for the next; several instances take them in
    parallel), skipping instances that are handing over while another is available."""
    instances = settings.schedule_service_instances
    if instances == 1:
        return 0
    now = time.monotonic()
    for _ in range(instances):
        index = next(_next_instance) % instances
        if _avoid_until.get((settings.inference_queue, index), 0.0) <= now:
            return index
    return index


async def _plan_via_service(
    session: Session,
    client: Client,
    settings: Settings,
    row: Plan,
    plan_input: PlanInput,
    instance: int,
) -> PlanOutput:
    """`schedule_mode=service`: one long-lived scheduler workflow per inference queue
    (worker/workflows/scheduler_service.py) answers each plan as an update, started on
    first use (update-with-start). An update is one workflow task on a workflow the
    worker has cached, instead of a start, a task and a result.

    Two refusals mean the plan never ran and is safely sent again: the validator's
    `SchedulerRestarting` while the workflow drains before continue-as-new, and the RPC
    error "... closing workflow" when an update races the continue-as-new itself. They
    are retried (on the next instance when there are several, else after a short pause)
    until `schedule_timeout_s` runs out."""
    deadline = time.monotonic() + settings.schedule_timeout_s
    pause = RETRY_PAUSE_S
    refused = 0
    while True:
        left = deadline - time.monotonic()
        operation = WithStartWorkflowOperation(
            SCHEDULER_SERVICE_WORKFLOW,
            scheduler_service_start(instance, settings.schedule_service_instances),
            id=row.workflow_id,
            task_queue=settings.inference_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            if left <= 0:
                raise TimeoutError
            return await _observing(
                operation,
                client.execute_update_with_start_workflow(
                    PLAN_UPDATE,
                    plan_input,
                    start_workflow_operation=operation,
                    id=f"schedule-{row.id}",
                    result_type=PlanOutput,
                    # The RPC's own deadline, not a cancellation: cancelling an
                    # update-with-start leaves its start future failed and unobserved.
                    rpc_timeout=timedelta(seconds=left),
                ),
                left + 2,
            )
        except (TimeoutError, RPCTimeoutOrCancelledError) as error:
            row.status, row.error, row.finished_at = "timed_out", "no plan in time", utcnow()
            await _save(session, row)
            raise _no_plan_in_time(settings, row, "send the request again") from error
        except WorkflowUpdateFailedError as error:
            cause = error.__cause__
            if not (isinstance(cause, ApplicationError) and cause.type == SCHEDULER_RESTARTING):
                await _record_failure(session, row, error)
        except RPCError as error:
            if "closing" not in error.message:
                raise Unavailable(f"Temporal did not take the plan request: {error.message}") from error
        refused += 1
        if settings.schedule_service_instances > 1:
            # Another instance takes it now, rather than this one once it has continued
            # as new: resending here every few ms while it closes ends in "workflow is
            # closing", which the SDK retries only after ~1 s (the p99 at 8 clients).
            _avoid_until[(settings.inference_queue, instance)] = time.monotonic() + HANDOVER_AVOID_S
            instance = service_instance(settings)
            row.workflow_id = scheduler_service_id(settings.inference_queue, instance)
            if refused % settings.schedule_service_instances:
                continue
        await asyncio.sleep(pause)
        pause = min(pause * 2, MAX_RETRY_PAUSE_S)


def _record_output(row: Plan, output: PlanOutput, started: float | None) -> None:
    row.status = "completed"
    if output.policy_id is not None:  # `best` resolved by the service workflow
        row.policy = output.policy_id
        row.checkpoint_id = output.policy_id if output.checkpoint else None
    row.notes = [*(row.notes or []), *output.notes]  # the deployment's, a search's
    row.result = output.model_dump(mode="json", include={"placements", "unplaced", "metrics", "baseline"})
    row.finished_at = utcnow()
    row.elapsed_ms = (time.perf_counter() - started) * 1000 if started is not None else output.elapsed_ms


async def _record_failure(
    session: Session, row: Plan, error: WorkflowFailureError | WorkflowUpdateFailedError
) -> NoReturn:
    """Store the failure, then raise 422 when the worker rejected the input, else 502."""
    cause: BaseException | None = error.__cause__
    app_error: ApplicationError | None = None
    while cause is not None:
        if isinstance(cause, ApplicationError) and app_error is None:
            # The outermost: the worker's own verdict (its cause may be the original
            # FileNotFoundError etc., typed by its class name).
            app_error = cause
        cause = cause.__cause__ if isinstance(cause, FailureError) else None
    message = app_error.message if app_error is not None else str(error.__cause__ or error)
    timed_out = app_error is not None and app_error.type == PLAN_TIMEOUT
    row.status, row.error, row.finished_at = "timed_out" if timed_out else "failed", message[:4000], utcnow()
    await _save(session, row)
    if timed_out:
        raise ProblemError(504, f"no plan in time: {message}", id=row.id, workflow_id=row.workflow_id)
    if app_error is not None and app_error.type in INPUT_ERROR_TYPES:
        raise ProblemError(422, f"the scheduler rejected the request: {message}", id=row.id)
    raise ProblemError(
        502, f"the scheduling workflow failed: {message}", id=row.id, workflow_id=row.workflow_id
    )


async def _save(session: Session, row: Plan) -> None:
    """Commit on a worker thread: the event loop never waits for the database."""
    await run_in_threadpool(commit_row, session, row)


async def get_plan(
    session: Session, temporal: TemporalGateway, settings: Settings, request_id: str
) -> PlanPublic:
    row = await run_in_threadpool(session.get, Plan, request_id)
    if row is None:
        raise NotFound(f"no plan {request_id!r}")
    if row.status == "running":
        await refresh_plan(session, temporal, settings, row)
    return _public(row)


async def refresh_plan(session: Session, temporal: TemporalGateway, settings: Settings, row: Plan) -> None:
    """Fetch a finished plan for a request answered 202 or 504; leave it running otherwise."""
    try:
        client = await temporal.client()
        handle = client.get_workflow_handle(row.workflow_id, result_type=PlanOutput)
        description = await handle.describe(rpc_timeout=rpc_timeout(settings))
        if description.status == WorkflowExecutionStatus.RUNNING:
            return
        output = await handle.result(rpc_timeout=rpc_timeout(settings))
    except WorkflowFailureError as error:
        with contextlib.suppress(ProblemError):
            await _record_failure(session, row, error)
        return
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            row.status, row.error, row.finished_at = "failed", "the workflow no longer exists", utcnow()
            await _save(session, row)
        return
    except (ProblemError, TimeoutError):
        return
    _record_output(row, output, None)
    await _save(session, row)
