"""ClusterLoopWorkflow: one per registered real cluster; every interval it reads the
cluster, plans, and applies the decisions that start now (or, in `advise` mode, records
what it would have applied).

Each step is an activity with its own retries; a tick whose step still fails is recorded
with its error and the loop waits longer before the next (doubling, up to 16 intervals),
so an unreachable controller never ends the workflow. Nothing in Slurm depends on the
loop to make progress: deferred jobs carry a lease that runs out by itself
(worker/clusters/slurm.py).

An apply retried after a worker died mid-tick re-reads the cluster and finds the jobs it
already wrote carrying this tick's id: they are recorded `unchanged`, not written twice,
and no decision is lost because the activity's result (not the worker) is what is
recorded. The decision history (the last `decisions_kept` ticks) answers the `status`
query and is carried over continue-as-new.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from worker.workflows import inference_queue

with workflow.unsafe.imports_passed_through():
    from worker.activities.clusters import apply_cluster_plan, plan_cluster, read_cluster
    from worker.contracts.clusters import (
        CLUSTER_LOOP_WORKFLOW,
        CLUSTER_STATUS_QUERY,
        ApplyClusterInput,
        ClusterLoopInput,
        ClusterLoopState,
        ClusterLoopStatus,
        PlanClusterInput,
        TickRecord,
    )


def step_retry(attempts: int) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=attempts,
        non_retryable_error_types=["InvalidInput"],
    )


READ_TIMEOUT = timedelta(seconds=60)
PLAN_TIMEOUT = timedelta(seconds=120)
APPLY_TIMEOUT = timedelta(seconds=300)
"""One `scontrol update` per decision (about 10 ms each): a thousand decisions fit."""
APPLY_HEARTBEAT = timedelta(seconds=10)
"""The apply heartbeats after each decision: a dead worker is noticed this fast."""
MAX_BACKOFF_INTERVALS = 16
SKIPPED_KEPT = 100
"""Skipped and unplaced jobs listed per tick record (the counts are always complete)."""


@workflow.defn(name=CLUSTER_LOOP_WORKFLOW)
class ClusterLoopWorkflow:
    @workflow.init
    def __init__(self, input: ClusterLoopInput) -> None:
        self._config = input.config
        self._state = input.state.model_copy(deep=True) if input.state else ClusterLoopState()

    @workflow.run
    async def run(self, input: ClusterLoopInput) -> None:
        config = self._config
        ticks_here = 0
        while True:
            if ticks_here >= config.ticks_per_run or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(ClusterLoopInput(config=config, state=self._state))
            record = await self._tick(self._state.ticks + 1)
            self._record(record)
            ticks_here += 1
            backoff = min(2**self._state.failures_in_a_row, MAX_BACKOFF_INTERVALS)
            await workflow.sleep(timedelta(seconds=config.interval_s * backoff))

    @workflow.query(name=CLUSTER_STATUS_QUERY)
    def status(self) -> ClusterLoopStatus:
        return ClusterLoopStatus(
            config=self._config,
            ticks=self._state.ticks,
            failed_ticks=self._state.failed_ticks,
            history=self._state.history,
        )

    async def _tick(self, tick: int) -> TickRecord:
        config = self._config
        record = TickRecord(tick=tick, at=workflow.now(), mode=config.mode)
        queue = inference_queue()
        retry = step_retry(config.step_attempts)
        try:
            snapshot = await workflow.execute_activity(
                read_cluster,
                config,
                task_queue=queue,
                start_to_close_timeout=READ_TIMEOUT,
                retry_policy=retry,
            )
            record.nodes, record.pending = len(snapshot.nodes), len(snapshot.pending)
            record.running = len(snapshot.jobs) - record.pending
            record.skipped = snapshot.skipped[:SKIPPED_KEPT]
            plan = await workflow.execute_activity(
                plan_cluster,
                PlanClusterInput(config=config, snapshot=snapshot),
                task_queue=queue,
                start_to_close_timeout=PLAN_TIMEOUT,
                retry_policy=retry,
            )
            record.policy = plan.policy
            record.unplaced = plan.unplaced[:SKIPPED_KEPT]
            if plan.decisions:
                record.decisions = await workflow.execute_activity(
                    apply_cluster_plan,
                    ApplyClusterInput(
                        config=config,
                        snapshot=snapshot,
                        plan=plan,
                        tick_id=f"{workflow.info().workflow_id}.{tick}",
                    ),
                    task_queue=queue,
                    start_to_close_timeout=APPLY_TIMEOUT,
                    heartbeat_timeout=APPLY_HEARTBEAT,
                    retry_policy=retry,
                )
        except ActivityError as error:
            cause = error.cause
            record.error = f"{error.message}: {cause.message if cause is not None else ''}".strip(": ")
            workflow.logger.warning("cluster %s tick %d failed: %s", config.name, tick, record.error)
        return record

    def _record(self, record: TickRecord) -> None:
        state = self._state
        state.ticks = record.tick
        if record.error is not None:
            state.failed_ticks += 1
            state.failures_in_a_row += 1
        else:
            state.failures_in_a_row = 0
        state.history = [*state.history, record][-self._config.decisions_kept :]
