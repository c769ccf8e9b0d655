"""SchedulerWorkflow: one placement plan (and its baseline) per schedule request.

Latency is the point: the API answers `POST /schedule` with this workflow's result, so
the workflow runs on `rl-inference` and does all of its work in ONE local activity
(`plan_schedule` computes the plan and the baseline's together). A local activity runs
in the worker that holds the workflow task, so a request costs a single workflow task
round trip through the server and no activity task dispatch.

Errors no retry can fix (unknown policy, missing checkpoint, a job no input can
describe) come back as the workflow's failure: an ApplicationError whose `type` is
`InvalidInput` or `CheckpointError` and whose message says what to change.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from worker.activities.inference import plan_schedule
    from worker.contracts import SCHEDULER_WORKFLOW, PlanInput, PlanOutput

PLAN_TIMEOUT = timedelta(seconds=60)
"""Generous for 10,000 jobs on 2,000 nodes; a 100-job plan takes milliseconds."""
PLAN_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3)


async def plan_locally(input: PlanInput) -> PlanOutput:
    """The plan as one local activity: the single piece of planning code of both
    SchedulerWorkflow and SchedulerServiceWorkflow's `plan` update."""
    try:
        return await workflow.execute_local_activity(
            plan_schedule, input, start_to_close_timeout=PLAN_TIMEOUT, retry_policy=PLAN_RETRY
        )
    except ActivityError as error:
        cause = error.cause
        if isinstance(cause, ApplicationError) and cause.non_retryable:
            # Surface the activity's own error as the workflow's (or update's) failure, so
            # callers read `type` and `message` one level down instead of two.
            raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
        raise


@workflow.defn(name=SCHEDULER_WORKFLOW)
class SchedulerWorkflow:
    @workflow.run
    async def run(self, input: PlanInput) -> PlanOutput:
        return await plan_locally(input)
