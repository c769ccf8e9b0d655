"""SmokeWorkflow: the quick end-to-end check that every activity is registered where the
workflows expect it and that Ray, RLlib and inference work on this machine.

generate_scenario (rl-inference) -> train_policy for a few tiny iterations
(rl-training) -> plan_schedule with the new checkpoint (rl-inference, as a regular
activity so the inference worker's activity path is exercised too) -> report.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from worker.workflows import inference_queue, training_queue

with workflow.unsafe.imports_passed_through():
    from worker.activities.inference import plan_schedule
    from worker.activities.scenario import generate_scenario
    from worker.activities.training import train_policy
    from worker.contracts import (
        SMOKE_WORKFLOW,
        PlanInput,
        PolicyRef,
        SmokeInput,
        SmokeReport,
        SyntheticSpec,
        TrainingRunConfig,
        TrainRoundInput,
    )

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)


@workflow.defn(name=SMOKE_WORKFLOW)
class SmokeWorkflow:
    @workflow.run
    async def run(self, input: SmokeInput) -> SmokeReport:
        started = workflow.now()
        synthetic = SyntheticSpec(workload=input.workload, seed=input.seed)
        scenario = await workflow.execute_activity(
            generate_scenario,
            synthetic,
            task_queue=inference_queue(),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        run_id = f"smoke-{workflow.info().run_id}"
        trained = await workflow.execute_activity(
            train_policy,
            TrainRoundInput(
                run_id=run_id,
                round=1,
                config=TrainingRunConfig(
                    run_id=run_id,
                    workload=input.workload,
                    ppo=input.ppo,
                    iterations_per_round=input.iterations,
                    max_rounds=1,
                    seed=input.seed,
                ),
                output_dir=input.output_dir or f"smoke/{run_id}",
            ),
            task_queue=training_queue(),
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        plan = await workflow.execute_activity(
            plan_schedule,
            PlanInput(
                synthetic=synthetic,
                policy=PolicyRef(kind="checkpoint", name="ppo", checkpoint=trained.checkpoint),
                baseline="fifo",
                window=input.workload.window,
            ),
            task_queue=inference_queue(),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        return SmokeReport(
            nodes=scenario.nodes,
            jobs=scenario.jobs,
            checkpoint=trained.checkpoint,
            iterations=trained.iteration,
            env_steps=trained.env_steps,
            placed=len(plan.placements),
            unplaced=len(plan.unplaced),
            score=plan.metrics.score,
            baseline_score=plan.baseline.metrics.score if plan.baseline else 0.0,
            elapsed_s=(workflow.now() - started).total_seconds(),
        )
