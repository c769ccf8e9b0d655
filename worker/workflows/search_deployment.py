"""SearchDeploymentWorkflow: measure a search on a class's held-out league, then deploy it
if it is eligible.

Why a workflow: the measurement takes tens of seconds to minutes of CPU (a search row
in the league of the class's workload), so `PUT /policy/{class}` answers 202 at once and
this carries on durably, whatever happens to the app meanwhile. The league runs on the
training queue (`evaluate_search`, heartbeating, where a checkpoint's round evaluation
runs); the deployment goes out from the inference queue (`deploy_policy`, the same
`deploy` update the app sends), where the scheduler service workflows live. An ineligible
search (margin <= 0 over the best heuristic) is refused with its measured margin, unless
forced; the service workflow's validator checks the same rule again.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from worker.workflows import inference_queue, training_queue

with workflow.unsafe.imports_passed_through():
    from worker.activities.deployment import deploy_policy
    from worker.activities.evaluation import evaluate_search
    from worker.contracts import (
        DEPLOY_REJECTED,
        SEARCH_DEPLOYMENT_WORKFLOW,
        SEARCH_PREFIX,
        DeployPolicyInput,
        DeployRequest,
        EvaluateSearchInput,
        SearchDeploymentInput,
        SearchDeploymentResult,
        SearchOptions,
        deploy_problem,
        search_evidence,
    )

DEPLOY_OPTIONS = {
    "start_to_close_timeout": timedelta(minutes=1),
    "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=20),
}


def evaluation_timeout(evaluation: EvaluateSearchInput) -> timedelta:
    """Room for every decision of every episode to spend its whole budget, four times over
    (the league's heuristics and `tuned`'s tuning besides), and never under half an hour."""
    budget_s = (evaluation.options or SearchOptions()).budget_ms / 1000
    worst_s = evaluation.episodes * evaluation.workload.jobs * budget_s
    return min(max(timedelta(minutes=30), timedelta(seconds=4 * worst_s)), timedelta(days=1))


@workflow.defn(name=SEARCH_DEPLOYMENT_WORKFLOW)
class SearchDeploymentWorkflow:
    @workflow.run
    async def run(self, input: SearchDeploymentInput) -> SearchDeploymentResult:
        evaluation = await workflow.execute_activity(
            evaluate_search,
            input.evaluation,
            task_queue=training_queue(),
            start_to_close_timeout=evaluation_timeout(input.evaluation),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=5),
        )
        evidence = search_evidence(input.evaluation, evaluation)
        tuned = input.deployment.policy == f"{SEARCH_PREFIX}tuned"
        deployment = input.deployment.model_copy(
            update={
                "evidence": evidence,
                "runs": evaluation.tuned_choice if tuned else None,
                "forced": input.force and not evidence.eligible,
            }
        )
        request = DeployRequest(deployment=deployment)
        refused = deploy_problem(request, None)
        if refused is None:
            try:
                landed = await workflow.execute_activity(
                    deploy_policy,
                    DeployPolicyInput(
                        request=request, instances=input.instances, update_id=workflow.info().workflow_id
                    ),
                    task_queue=inference_queue(),
                    **DEPLOY_OPTIONS,
                )
            except ActivityError as error:
                cause = error.cause
                if not (isinstance(cause, ApplicationError) and cause.type == DEPLOY_REJECTED):
                    raise
                refused = cause.message
            else:
                return SearchDeploymentResult(
                    status="deployed",
                    deployment=landed.deployment,
                    previous=landed.previous,
                    evaluation=evaluation,
                )
        workflow.logger.info("search %r not deployed: %s", deployment.policy, refused)
        return SearchDeploymentResult(
            status="refused", deployment=deployment, detail=refused, evaluation=evaluation
        )
