"""SchedulerServiceWorkflow: one long-lived workflow answering synchronous plans as updates.

Why: a workflow per request costs a start, a first workflow task and a result fetch;
an update to a workflow already cached in the worker costs one workflow task (the plan
runs as the same local activity SchedulerWorkflow uses, `plan_locally`). The API sends
`plan` with update-with-start, so the first request (or the first after the workflow
was terminated) starts it under its well-known id (contracts.scheduler_service_id).

Updates run concurrently: each handler awaits its own local activity, and the worker's
`max_concurrent_local_activities` bounds how many plans compute at once.

History grows by each plan's input and output (~45 KB for 100 jobs), so the workflow
continues as new after `continue_as_new_every` plans, at HISTORY_BUDGET_BYTES of history,
or when the server suggests it. Instance i of n (the app spreads plans over several in
turn) ends its first run at (i+1)/n of those budgets, so the instances hand over one at a
time: when they all drained at once, every plan in flight had nowhere to go.
While it drains, the validator rejects new plans as `SchedulerRestarting` (nothing is
written to history, the API sends them again) and the run waits for the plans in flight
to finish, so no accepted update is ever cut off by continue-as-new.

Deployed policies: the workflow holds one Deployment per workload class, changed by the
`deploy` update (its validator, contracts.deploy_problem, refuses ineligible or not
better checkpoints before anything is written) and carried over continue-as-new. A plan
whose policy is `deployed` resolves it in its own handler, so each plan uses what was
deployed when it arrived and a deployment takes effect for the next plan with no
restart and nothing in flight dropped. A deployed search plans with the options it was
measured with (and over the composition `tuned` ran then).

Measured cost of a continue-as-new under load (benchmarks/api_schedule_latency.py, 8
clients): plans that reach the server while the run's last workflow task is open are
refused when the run closes, and the SDK client resends them only after ~1 s. With the
server's suggestion as the only trigger, all instances handed over at the same plan
count and ~1.3% of plans took 1-1.6 s (p99 4-6x p50). Staggered first runs and the
HANDOVER_PAUSE before continuing (pending plans are refused by the validator and go to
another instance) leave ~0.5% of them.
"""

from __future__ import annotations

from datetime import timedelta

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


HANDOVER_PAUSE = timedelta(milliseconds=50)
HISTORY_BUDGET_BYTES = 3_000_000
"""A run hands over at this history size, below the server's default suggestion (4 MB):
its own budget, scaled by `first_run_share`, keeps instances' hand-overs staggered, where
the server's suggestion would come to every instance at the same plan count."""


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
        share = self._config.first_run_share
        plans = max(1, round(self._config.continue_as_new_every * share))
        history_bytes = HISTORY_BUDGET_BYTES * share
        await workflow.wait_condition(
            lambda: (
                self._accepted >= plans
                or workflow.info().get_current_history_size() >= history_bytes
                or workflow.info().is_continue_as_new_suggested()
            )
        )
        self._draining = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        # Plans that reached the server while the last workflow task was open (it stays
        # open while its local activities compute) are delivered only in the next task:
        # a short timer makes that task, where the validator refuses them at once and the
        # app sends them elsewhere. Continuing as new right away would close the run with
        # them pending, and the SDK resends those only after ~1 s.
        await workflow.sleep(HANDOVER_PAUSE)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            self._config.model_copy(update={"deployments": self._deployments, "first_run_share": 1.0})
        )

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
        search = deployed.search if deployed is not None else None
        served = request.model_copy(update={"policy": ref, "window": window, "search": search})
        output = await plan_locally(served)
        note = deployed_note(wanted.name, deployed, fallback)
        policy_id = deployed.policy if deployed is not None else ref.name
        return output.model_copy(update={"policy_id": policy_id, "notes": [note, *output.notes]})

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
