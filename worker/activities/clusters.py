"""The three steps of a real cluster's tick (ClusterLoopWorkflow): read, plan, apply.

Each is its own activity so Temporal retries each alone: a controller that does not
answer fails the read or the apply (retryable `ClusterUnavailable`), never the plan. They
run on the inference queue: a tick is short (tens of milliseconds of Slurm commands and a
plan) and must not wait behind a training round.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from worker.contracts import (
    DEPLOYMENTS_QUERY,
    INFERENCE_TASK_QUEUE,
    Deployment,
    Deployments,
    PolicyRef,
    deployed_note,
    scheduler_service_id,
)
from worker.contracts.clusters import (
    AppliedDecision,
    ApplyClusterInput,
    ClusterConfig,
    ClusterPlan,
    ClusterProbe,
    ClusterProbeInput,
    ClusterSnapshot,
    PlanClusterInput,
)

CLUSTER_UNAVAILABLE = "ClusterUnavailable"
"""The controller did not answer or refused the worker; retried with backoff."""


def _unavailable(error: Exception) -> ApplicationError:
    return ApplicationError(str(error), type=CLUSTER_UNAVAILABLE)


@activity.defn(name="read_cluster")
def read_cluster(config: ClusterConfig) -> ClusterSnapshot:
    from worker.clusters.slurm import SlurmUnavailable, read_cluster

    try:
        return read_cluster(config)
    except SlurmUnavailable as error:
        raise _unavailable(error) from error


@activity.defn(name="probe_cluster")
def probe_cluster(input: ClusterProbeInput) -> ClusterProbe:
    """The read a tick starts with, once and bounded, reported rather than raised: an
    unreachable cluster is the answer the app wants, not a failure to retry."""
    import os

    from worker.clusters.slurm import SlurmClient, SlurmUnavailable, read_cluster

    config = input.config
    if not os.path.isfile(config.endpoint):
        return ClusterProbe(
            reachable=False, cause="endpoint", detail=f"no slurm.conf at {config.endpoint} on the worker"
        )
    try:
        snapshot = read_cluster(config, SlurmClient(config.endpoint, timeout_s=input.timeout_s))
    except SlurmUnavailable as error:
        return ClusterProbe(reachable=False, cause="controller", detail=str(error))
    pending = len(snapshot.pending)
    return ClusterProbe(
        reachable=True,
        nodes=len(snapshot.nodes),
        pending=pending,
        running=len(snapshot.jobs) - pending,
        skipped=len(snapshot.skipped),
        notes=snapshot.notes[:20],
    )


@activity.defn(name="plan_cluster")
async def plan_cluster(input: PlanClusterInput) -> ClusterPlan:
    """Plans with the policy deployed for the cluster's class (asked of the scheduler
    service workflow of this worker's inference queue), its fallback heuristic otherwise."""
    from worker.clusters.planning import cluster_plan, plan_input

    config, snapshot = input.config, input.snapshot
    if not snapshot.pending or not snapshot.nodes:
        return ClusterPlan(
            policy="none", decisions=[], notes=["nothing pending" if snapshot.nodes else "no nodes"]
        )
    deployed = await _deployment(activity.client(), activity.info().task_queue, config.policy_class)
    ref = deployed.ref() if deployed is not None else PolicyRef(kind="heuristic", name=config.fallback)
    window = deployed.window if deployed is not None and deployed.window else config.window
    request, left_out = plan_input(config, snapshot, ref, window)
    if request is None:
        return ClusterPlan(
            policy=ref.name, decisions=[], unplaced=left_out, notes=["nothing the plan can take"]
        )
    from worker.activities.inference import _plan

    if deployed is not None:  # a deployed search plans with the options it was measured with
        request = request.model_copy(update={"search": deployed.search})
    output = await asyncio.to_thread(_plan, request)
    output = output.model_copy(
        update={
            "policy_id": deployed.policy if deployed is not None else ref.name,
            "notes": [deployed_note(config.policy_class, deployed, config.fallback), *output.notes],
        }
    )
    plan = cluster_plan(snapshot, output)
    return plan.model_copy(update={"unplaced": [*left_out, *plan.unplaced]})


async def _deployment(client: Client, task_queue: str, policy_class: str) -> Deployment | None:
    """What the scheduler service workflow has deployed for `policy_class`; None when it
    has never run (nothing is deployed anywhere then)."""
    from temporalio.service import RPCError, RPCStatusCode

    prefix = task_queue.removesuffix(INFERENCE_TASK_QUEUE)
    handle = client.get_workflow_handle(scheduler_service_id(prefix + INFERENCE_TASK_QUEUE))
    try:
        deployments = await handle.query(DEPLOYMENTS_QUERY, result_type=Deployments)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return deployments.classes.get(policy_class)


@activity.defn(name="apply_cluster_plan")
def apply_cluster_plan(input: ApplyClusterInput) -> list[AppliedDecision]:
    """Heartbeats after each decision, so a worker that dies mid-apply is noticed within
    the heartbeat timeout and another attempt finishes the tick (seeing what the first
    one wrote under the same tick id)."""
    from worker.clusters.slurm import SlurmUnavailable, apply_plan

    try:
        return apply_plan(
            input.config, input.snapshot, input.plan, input.tick_id, progress=activity.heartbeat
        )
    except SlurmUnavailable as error:
        raise _unavailable(error) from error
