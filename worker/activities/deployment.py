"""deploy_policy: a measured search reaches the scheduler service workflows.

The `deploy` update, with start, to every service instance of this worker's inference
queue, as the app sends an operator's deployment (app/services/policy.py): the service
workflow's validator (contracts.deploy_problem) has the last word, and a workflow that
never ran is started by the update. An update racing a continue-as-new fails the attempt
and Temporal's retry sends it again; each instance's update id is fixed, so an update
that did land is not applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import activity
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from worker.contracts import (
    DEPLOY_REJECTED,
    DEPLOY_UPDATE,
    SCHEDULER_SERVICE_WORKFLOW,
    DeployPolicyInput,
    DeployResult,
    scheduler_service_id,
    scheduler_service_start,
)


@activity.defn(name="deploy_policy")
async def deploy_policy(input: DeployPolicyInput) -> DeployResult:
    """The first instance's answer. A refusal by the validator fails the activity with a
    non-retryable `DeployRejected` carrying its message."""
    client, queue = activity.client(), activity.info().task_queue
    results: list[DeployResult] = []
    for instance in range(input.instances):
        operation = WithStartWorkflowOperation(
            SCHEDULER_SERVICE_WORKFLOW,
            scheduler_service_start(instance, input.instances),
            id=scheduler_service_id(queue, instance),
            task_queue=queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            results.append(
                await client.execute_update_with_start_workflow(
                    DEPLOY_UPDATE,
                    input.request,
                    start_workflow_operation=operation,
                    id=f"{input.update_id}-{instance}",
                    result_type=DeployResult,
                )
            )
        except WorkflowUpdateFailedError as error:
            cause = error.__cause__
            if isinstance(cause, ApplicationError) and cause.type == DEPLOY_REJECTED:
                raise ApplicationError(cause.message, type=DEPLOY_REJECTED, non_retryable=True) from error
            raise
        finally:
            # The SDK fails the start future alongside a failed update; observe it so it
            # is not logged as an exception never retrieved.
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(operation.workflow_handle(), 0.1)
    return results[0]
