"""Deploying a search (`PUT /policy/{class}` with `search:<base>`): resolve it, start
SearchDeploymentWorkflow, answer 202, and keep the row current from the workflow.

A search has no stored evaluation, so it is measured first, on the worker (the app never
runs the simulator): the workflow plays the held-out league of the class's workload with
the search as a row, then deploys it when it beat the best heuristic (or when forced), or
refuses it with the measured margin. The row is refreshed on read and by the reconciler.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from app.core.config import Settings
from app.db import commit_row
from app.errors import NotFound, ProblemError, Unavailable, Unprocessable
from app.models import (
    Checkpoint,
    PolicyDeploy,
    SearchDeployment,
    SearchDeploymentPublic,
    policy_deployed,
    utcnow,
)
from app.services.checkpoints import usable_location
from app.services.temporal import TemporalGateway, rpc_timeout
from worker.contracts import (
    SEARCH_DEPLOYMENT_WORKFLOW,
    SEARCH_PREFIX,
    Deployment,
    EvaluateSearchInput,
    HeldOutLeague,
    SearchDeploymentInput,
    SearchDeploymentResult,
    class_workload,
    evaluation_seed,
    evaluation_workload,
    search_needs_no_checkpoint,
)

RECENT = 20
"""Search deployments GET /policy shows."""


def search_deployment_input(
    session: Session, settings: Settings, policy_class: str, body: PolicyDeploy
) -> SearchDeploymentInput:
    """The workflow's input: the base resolved (a checkpoint id to its location and
    window, 422 naming `policy` when unknown) and the held-out league made explicit."""
    checkpoint, window = None, None
    if not search_needs_no_checkpoint(body.policy):
        base = body.policy.removeprefix(SEARCH_PREFIX)
        ckpt = session.get(Checkpoint, base)
        if ckpt is None:
            raise Unprocessable(
                f"unknown search base {base!r}: not a heuristic, not `tuned`, and no checkpoint has that id "
                "(GET /checkpoints)",
                ["body", "policy"],
            )
        checkpoint, window = usable_location(ckpt), ckpt.window
    league = body.league or HeldOutLeague()
    workload = league.workload or class_workload(policy_class)
    if workload is None:
        raise Unprocessable(
            f"class {policy_class!r} is not named after a workload: say which workload the search is "
            "measured on in league.workload",
            ["body", "league", "workload"],
        )
    window = window or workload.window
    evaluation = EvaluateSearchInput(
        policy=body.policy,
        checkpoint=checkpoint,
        options=body.search,
        workload=evaluation_workload(workload).model_copy(update={"window": window}),
        episodes=league.eval_episodes,
        seed=evaluation_seed(league.seed),
        objective=league.objective,
    )
    deployment = Deployment(
        policy_class=policy_class,
        policy=body.policy,
        kind="search",
        checkpoint=checkpoint,
        window=window,
        search=body.search,
    )
    return SearchDeploymentInput(
        deployment=deployment,
        evaluation=evaluation,
        force=body.force,
        instances=settings.schedule_service_instances,
    )


async def start_search_deployment(
    session: Session, temporal: TemporalGateway, settings: Settings, policy_class: str, body: PolicyDeploy
) -> SearchDeploymentPublic:
    """Start measuring the search (SearchDeploymentWorkflow on the training queue) and
    record the request; the caller answers 202 with where to poll."""
    workflow_input = await run_in_threadpool(search_deployment_input, session, settings, policy_class, body)
    row_id = uuid.uuid4().hex[:16]
    row = SearchDeployment(
        id=row_id,
        workflow_id=f"search-deployment-{row_id}",
        policy_class=policy_class,
        policy=body.policy,
        force=body.force,
        request=workflow_input.model_dump(mode="json"),
    )
    client = await temporal.client()
    try:
        await client.start_workflow(
            SEARCH_DEPLOYMENT_WORKFLOW,
            workflow_input,
            id=row.workflow_id,
            task_queue=settings.training_queue,
            rpc_timeout=rpc_timeout(settings),
        )
    except RPCError as error:
        raise Unavailable(f"could not start measuring the search on Temporal: {error.message}") from error
    await run_in_threadpool(commit_row, session, row)
    return search_deployment_public(row)


async def get_search_deployment(
    session: Session, temporal: TemporalGateway, settings: Settings, deployment_id: str
) -> SearchDeploymentPublic:
    row = await run_in_threadpool(session.get, SearchDeployment, deployment_id)
    if row is None:
        raise NotFound(f"no search deployment {deployment_id!r}")
    if row.status == "evaluating":
        await refresh_search_deployment(session, temporal, settings, row)
    return search_deployment_public(row)


async def recent_search_deployments(
    session: Session, temporal: TemporalGateway, settings: Settings
) -> list[SearchDeploymentPublic]:
    """The latest ones, newest first; those still measuring are refreshed first."""
    rows = await run_in_threadpool(_recent, session)
    for row in rows:
        if row.status == "evaluating":
            await refresh_search_deployment(session, temporal, settings, row)
    return [search_deployment_public(row) for row in rows]


def _recent(session: Session) -> Sequence[SearchDeployment]:
    query = select(SearchDeployment).order_by(col(SearchDeployment.created_at).desc()).limit(RECENT)
    return session.exec(query).all()


def measuring(session: Session) -> Sequence[SearchDeployment]:
    """Search deployments whose workflow has not been seen finishing (for the reconciler)."""
    return session.exec(select(SearchDeployment).where(SearchDeployment.status == "evaluating")).all()


async def refresh_search_deployment(
    session: Session, temporal: TemporalGateway, settings: Settings, row: SearchDeployment
) -> None:
    """Record the workflow's outcome once it has one; leave the row measuring otherwise (and
    while Temporal does not answer: the next read or reconcile pass asks again)."""
    try:
        client = await temporal.client()
        handle = client.get_workflow_handle(row.workflow_id, result_type=SearchDeploymentResult)
        description = await handle.describe(rpc_timeout=rpc_timeout(settings))
        if description.status == WorkflowExecutionStatus.RUNNING:
            return
        result = await handle.result(rpc_timeout=rpc_timeout(settings))
    except WorkflowFailureError as error:
        row.status, row.error = "failed", _failure_message(error)[:4000]
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            return
        row.status, row.error = "failed", "the workflow no longer exists"
    except (ProblemError, TimeoutError):
        return
    else:
        row.status, row.result = result.status, result.model_dump(mode="json")
    row.finished_at = utcnow()
    await run_in_threadpool(commit_row, session, row)


def _failure_message(error: WorkflowFailureError) -> str:
    """The worker's own verdict (the innermost application error: e.g. a base that does not
    apply to the workload, a checkpoint that does not load), else what failed."""
    cause: BaseException | None = error.__cause__
    message = str(cause or error)
    while cause is not None:
        if isinstance(cause, ApplicationError):
            message = cause.message
        cause = cause.__cause__ if isinstance(cause, FailureError) else None
    return message


def search_deployment_public(row: SearchDeployment) -> SearchDeploymentPublic:
    request = SearchDeploymentInput.model_validate(row.request)
    result = SearchDeploymentResult.model_validate(row.result) if row.result else None
    evidence = result.deployment.evidence if result is not None else None
    deployed = None
    if result is not None and result.status == "deployed":
        deployed = policy_deployed(result.deployment, result.previous)
    evaluation = request.evaluation
    return SearchDeploymentPublic(
        id=row.id,
        workflow_id=row.workflow_id,
        policy_class=row.policy_class,
        policy=row.policy,
        force=row.force,
        status=row.status,  # type: ignore[arg-type]
        search=evaluation.options,
        workload=evaluation.workload,
        objective=evaluation.objective,
        seed=evaluation.seed,
        episodes=evaluation.episodes,
        margin=evidence.margin if evidence is not None else None,
        detail=row.error or (result.detail if result is not None else None),
        deployment=deployed,
        evaluation=result.evaluation if result is not None else None,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )
