"""SchedulerServiceWorkflow: one long-lived workflow answering synchronous plans as updates.

Why: a workflow per request costs a start, a first workflow task and a result fetch;
an update to a workflow already cached in the worker costs one workflow task (the plan
runs as the same local activity SchedulerWorkflow uses, `plan_locally`). The API sends
`plan` with update-with-start, so the first request (or the first after the workflow
was terminated) starts it under its well-known id (contracts.scheduler_service_id).

Updates run concurrently: each handler awaits its own local activity, and the worker's
`max_concurrent_local_activities` bounds how many plans compute at once.

History grows by each plan's input and output (~45 KB for 100 jobs), so the workflow
continues as new after `continue_as_new_every` plans or when the server suggests it.
While it drains, the validator rejects new plans as `SchedulerRestarting` (nothing is
written to history, the API sends them again) and the run waits for the plans in flight
to finish, so no accepted update is ever cut off by continue-as-new.

Deployed policies: the workflow holds one Deployment per workload class, changed by the
`deploy` update (its validator, contracts.deploy_problem, refuses ineligible or not
better checkpoints before anything is written) and carried over continue-as-new. A plan
whose policy is `deployed` resolves it in its own handler, so each plan uses what was
deployed when it arrived and a deployment takes effect for the next plan with no
restart and nothing in flight dropped.

Measured cost of a continue-as-new under load: plans the server admitted but had not yet
delivered when the run closed are refused with RESOURCE_EXHAUSTED "workflow is closing",
which the SDK client retries after ~1 s on its own; with 8 clients that is ~8 plans per
~100 (the server suggests continue-as-new near 4 MB of history, ~41 KB per 100-job plan)
answered in ~1.2 s instead of tens of ms: the p99 at 8 clients.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from worker.activities import INVALID_INPUT
    from worker.contracts import (
        DEPLOY_REJECTED,
        DEPLOY_UPDATE,
        DEPLOYMENTS_QUERY,
        PLAN_UPDATE,
        SCHEDULER_RESTARTING,
        SCHEDULER_SERVICE_WORKFLOW,
        Deployments,
        DeployRequest,
        DeployResult,
        PlanInput,
        PlanOutput,
        PolicyRef,
        SchedulerServiceInput,
        deploy_problem,
        deployed_note,
        plan_input_problem,
    )
    from worker.workflows.scheduler import plan_locally


@workflow.defn(name=SCHEDULER_SERVICE_WORKFLOW)
class SchedulerServiceWorkflow:
    @workflow.init
    def __init__(self, input: SchedulerServiceInput | None = None) -> None:
        self._config = input or SchedulerServiceInput()
        self._accepted = 0
        self._draining = False
        self._deployments = dict(self._config.deployments)

    @workflow.run
    async def run(self, input: SchedulerServiceInput | None = None) -> None:
        """Serve plans until this run should hand over, then continue as new with the
        same configuration. Never returns otherwise."""
        await workflow.wait_condition(
            lambda: (
                self._accepted >= self._config.continue_as_new_every
                or workflow.info().is_continue_as_new_suggested()
            )
        )
        self._draining = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._config.model_copy(update={"deployments": self._deployments}))

    @workflow.update(name=PLAN_UPDATE)
    async def plan(self, request: PlanInput) -> PlanOutput:
        """Mutates only the count of plans this run accepted; returns the plan (and its
        baseline's), or fails the update, not the workflow, with the activity's
        `InvalidInput` / `CheckpointError`."""
        self._accepted += 1
        if request.policy.kind != "deployed":
            return await plan_locally(request)
        wanted = request.policy
        deployed = self._deployments.get(wanted.name)
        fallback = wanted.fallback or request.baseline
        ref = deployed.ref() if deployed is not None else PolicyRef(kind="heuristic", name=fallback)
        window = request.window
        if deployed is not None and deployed.window and not wanted.keep_window:
            window = deployed.window
        output = await plan_locally(request.model_copy(update={"policy": ref, "window": window}))
        note = deployed_note(wanted.name, deployed, fallback)
        return output.model_copy(update={"policy_id": ref.name, "notes": [note]})

    @plan.validator
    def validate_plan(self, request: PlanInput) -> None:
        """Reject, before anything reaches history, input no plan can come from and any
        plan arriving while the run drains for continue-as-new."""
        if self._draining:
            raise ApplicationError(
                "the scheduler service is continuing as new; send the plan again",
                type=SCHEDULER_RESTARTING,
            )
        problem = plan_input_problem(request)
        if problem is not None:
            raise ApplicationError(problem, type=INVALID_INPUT, non_retryable=True)

    @workflow.update(name=DEPLOY_UPDATE)
    def deploy(self, request: DeployRequest) -> DeployResult:
        """Mutates the class's deployment; plans already running keep the policy they
        resolved, the next plan of the class gets this one."""
        wanted = request.deployment.model_copy(update={"deployed_at": workflow.now()})
        previous = self._deployments.get(wanted.policy_class)
        self._deployments[wanted.policy_class] = wanted
        workflow.logger.info("deployed %s %r for class %r", wanted.kind, wanted.policy, wanted.policy_class)
        return DeployResult(deployment=wanted, previous=previous)

    @deploy.validator
    def validate_deploy(self, request: DeployRequest) -> None:
        """Refuse, before anything reaches history, a deployment the rules forbid."""
        problem = deploy_problem(request, self._deployments.get(request.deployment.policy_class))
        if problem is not None:
            raise ApplicationError(problem, type=DEPLOY_REJECTED, non_retryable=True)

    @workflow.query(name=DEPLOYMENTS_QUERY)
    def deployments(self) -> Deployments:
        return Deployments(classes=dict(self._deployments))
