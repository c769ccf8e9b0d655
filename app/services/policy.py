"""Deployed policies: what `best` in POST /schedule serves per workload class.

The scheduler service workflow holds them (contracts.Deployment per class, carried over
continue-as-new): it is the source of truth, so nothing here is written to the index.
A deployment is the `deploy` update sent to every service instance of the inference
queue (update-with-start, so it lands even before the first plan); its validator
(contracts.deploy_problem) refuses an ineligible checkpoint unless forced. The app
checks the same rule first, from the index, to answer without a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from app.core.config import Settings
from app.errors import ProblemError, Unavailable
from app.models import (
    Checkpoint,
    PoliciesPublic,
    PolicyDeploy,
    PolicyDeployed,
    Run,
    policy_deployed,
    policy_public,
)
from app.services.checkpoints import usable_location
from app.services.search_deployments import recent_search_deployments
from app.services.temporal import TemporalGateway, rpc_timeout
from worker.contracts import (
    DEPLOY_REJECTED,
    DEPLOY_UPDATE,
    DEPLOYMENTS_QUERY,
    SCHEDULER_SERVICE_WORKFLOW,
    Deployment,
    Deployments,
    DeployRequest,
    DeployResult,
    EvaluationEvidence,
    SchedulerServiceInput,
    WorkloadConfig,
    deploy_problem,
    evaluation_seed,
    evaluation_workload,
    heuristic_problem,
    scheduler_service_id,
    scheduler_service_start,
)

log = logging.getLogger(__name__)

RETRY_PAUSE_S = 0.05


def evidence_for(session: Session, ckpt: Checkpoint) -> EvaluationEvidence:
    """The checkpoint's held-out evaluation, from its row and its run's configuration
    (the evaluation seed and workload are derived from them as the training loop does)."""
    run = session.get(Run, ckpt.run_id)
    config = run.config if run is not None else {}
    workload = WorkloadConfig.model_validate(config.get("workload") or {})
    return EvaluationEvidence(
        run_id=ckpt.run_id,
        round=ckpt.round,
        workload=evaluation_workload(workload),
        objective=config.get("objective", "deadline"),
        seed=evaluation_seed(int(config.get("seed", 0))),
        episodes=int(config.get("eval_episodes", 5)),
        ppo_value=ckpt.score,
        best_heuristic=ckpt.best_heuristic,
        best_heuristic_score=ckpt.best_heuristic_score,
        margin=ckpt.margin,
        league=dict(ckpt.heuristic_scores or {}),
    )


def checkpoint_deployment(session: Session, ckpt: Checkpoint, policy_class: str, force: bool) -> Deployment:
    evidence = evidence_for(session, ckpt)
    return Deployment(
        policy_class=policy_class,
        policy=ckpt.id,
        kind="checkpoint",
        checkpoint=usable_location(ckpt),
        window=ckpt.window,
        evidence=evidence,
        forced=force and not evidence.eligible,
    )


async def current_deployments(client: Client, settings: Settings) -> Deployments:
    """The deployments of the first service instance (all instances get every deployment);
    none when the service workflow has never run."""
    handle = client.get_workflow_handle(scheduler_service_id(settings.inference_queue))
    try:
        return await handle.query(
            DEPLOYMENTS_QUERY, result_type=Deployments, rpc_timeout=rpc_timeout(settings)
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return Deployments()
        raise Unavailable(
            f"could not ask the scheduler service workflow for its deployments ({error.message}); "
            f"is a worker polling {settings.inference_queue!r}?"
        ) from error
    except WorkflowQueryFailedError as error:
        raise Unavailable(f"the scheduler service workflow could not answer: {error}") from error


async def list_policies(session: Session, temporal: TemporalGateway, settings: Settings) -> PoliciesPublic:
    deployments = await current_deployments(await temporal.client(), settings)
    data = [policy_public(d) for _, d in sorted(deployments.classes.items())]
    searches = await recent_search_deployments(session, temporal, settings)
    return PoliciesPublic(
        data=data, count=len(data), fallback=settings.fallback_heuristic, search_deployments=searches
    )


async def deploy(
    session: Session, temporal: TemporalGateway, settings: Settings, policy_class: str, body: PolicyDeploy
) -> PolicyDeployed:
    """A heuristic or a checkpoint, deployed now: 409 for an unknown or ineligible checkpoint
    (unless forced), 422 for a bad class. A search is measured first (search_deployments)."""
    not_heuristic = heuristic_problem(body.policy)
    if not_heuristic is None:
        deployment = Deployment(policy_class=policy_class, policy=body.policy, kind="heuristic")
    else:
        deployment = await run_in_threadpool(_named_checkpoint, session, policy_class, body, not_heuristic)
    request = DeployRequest(deployment=deployment)
    if (problem := deploy_problem(request, None)) is not None:
        raise ProblemError(409, f"cannot deploy for class {policy_class!r}: {problem}")
    result = await send_deployment(await temporal.client(), settings, request)
    return policy_deployed(result.deployment, result.previous)


def _named_checkpoint(
    session: Session, policy_class: str, body: PolicyDeploy, not_heuristic: str
) -> Deployment:
    ckpt = session.get(Checkpoint, body.policy)
    if ckpt is None:
        raise ProblemError(
            409,
            f"cannot deploy {body.policy!r}: no checkpoint has that id (GET /checkpoints lists them) "
            f"and it is not a heuristic: {not_heuristic}",
        )
    return checkpoint_deployment(session, ckpt, policy_class, body.force)


class DeployRefused(Exception):
    """The service workflow's validator refused the deployment (the message says why)."""


async def send_deployment(client: Client, settings: Settings, request: DeployRequest) -> DeployResult:
    """The `deploy` update to every service instance, the first one's answer. A refusal by
    the validator is a 409 (DeployRefused for automatic offers); an update that races a
    continue-as-new is sent again, as plans are."""
    results: list[DeployResult] = []
    for instance in range(settings.schedule_service_instances):
        workflow_id = scheduler_service_id(settings.inference_queue, instance)
        start = scheduler_service_start(instance, settings.schedule_service_instances)
        try:
            results.append(await _update(client, settings, workflow_id, start, request))
        except WorkflowUpdateFailedError as error:
            cause = error.__cause__
            if isinstance(cause, ApplicationError) and cause.type == DEPLOY_REJECTED:
                if request.auto:
                    raise DeployRefused(cause.message) from error
                raise ProblemError(409, f"cannot deploy: {cause.message}") from error
            raise ProblemError(
                502, f"the scheduler service refused the deployment: {error.__cause__}"
            ) from error
    return results[0]


async def _update(
    client: Client,
    settings: Settings,
    workflow_id: str,
    start: SchedulerServiceInput,
    request: DeployRequest,
) -> DeployResult:
    deadline = time.monotonic() + settings.schedule_timeout_s
    while True:
        operation = WithStartWorkflowOperation(
            SCHEDULER_SERVICE_WORKFLOW,
            start,
            id=workflow_id,
            task_queue=settings.inference_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        left = deadline - time.monotonic()
        try:
            try:
                return await client.execute_update_with_start_workflow(
                    DEPLOY_UPDATE,
                    request,
                    start_workflow_operation=operation,
                    result_type=DeployResult,
                    rpc_timeout=timedelta(seconds=max(left, 0.1)),
                )
            except BaseException:
                # The SDK fails the start future alongside; observe it so it is not
                # logged as an exception never retrieved.
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(operation.workflow_handle(), 0.1)
                raise
        except RPCError as error:
            if "closing" not in error.message or left <= 0:
                raise Unavailable(
                    f"the scheduler service workflow did not take the deployment ({error.message}); "
                    f"is a worker polling {settings.inference_queue!r}?"
                ) from error
        await asyncio.sleep(RETRY_PAUSE_S)


async def offer_round(
    client: Client, settings: Settings, session: Session, run: Run, ckpt: Checkpoint
) -> None:
    """A run with `deploy: "auto"` offers each new round's checkpoint; the service
    workflow's validator deploys it only when eligible and better on the same seeds
    (contracts.deploy_problem). A refusal is normal and only logged."""
    policy_class = run.config.get("deploy_class") or run.config.get("workload", {}).get("name") or "default"
    deployment = await run_in_threadpool(checkpoint_deployment, session, ckpt, policy_class, False)
    if not deployment.eligible:
        log.info("run %s: %s not auto-deployed: margin %+.4f", run.id, ckpt.id, ckpt.margin)
        return
    request = DeployRequest(deployment=deployment.model_copy(update={"source": "auto"}), auto=True)
    try:
        await send_deployment(client, settings, request)
    except DeployRefused as refused:
        log.info("run %s: %s not auto-deployed for %r: %s", run.id, ckpt.id, policy_class, refused)
        return
    log.info("run %s: auto-deployed %s for class %r", run.id, ckpt.id, policy_class)
