"""TrainingLoopWorkflow: rounds of scenario -> train -> evaluate -> store, until told to stop.

A run with `ppo.distill` labels first in each round (`label_round`: training episodes
played by the search, stored under the run's `labels/round-NNNN`), and the round's PPO
also imitates those labels (worker/rl/distill.py). Every round labels with the run's
`distill.search` first; once the run has a checkpoint, with `search:<that checkpoint>`
(expert iteration: the improved policy is the next search's base), unless `distill.pin`.
With `distill.gate` (the default) a round's checkpoint becomes the run's current policy,
the one the next round resumes from and searches over, only if it scores at least as
well as the current one on training-side validation episodes (`validate_policy`), as in
AlphaGo Zero: imitation can make the greedy policy collapse within a round, and a
collapsed policy's search would label the next round. Every round is still evaluated,
stored and offered for deployment; the gate only chooses what the run builds on.

Each round validates the workload (`generate_scenario`, cheap), trains
`iterations_per_round` PPO iterations resuming from the latest checkpoint
(`train_policy`, which survives worker crashes through its heartbeats), evaluates the
new checkpoint against every heuristic on held-out episodes (`evaluate_policy`; with
`eval_search`, on by default for a distilling run, `search:<the checkpoint>` joins them)
and records it in the artifact store (`store_checkpoint`). The run ends after `max_rounds`
rounds (None: never by itself) or after a stop.

Stop is an update, not a signal: the caller learns at once whether its stop was
accepted, and why not (already stopping, already finished) from the validator, which
rejects it before anything is written to history. A signal would be accepted silently
even when it can have no effect. Stop is graceful: the running round finishes, is
evaluated and checkpointed, then the workflow returns its summary. Cancelling the
workflow instead cancels the running training activity, which saves a checkpoint
between iterations before it goes.

History stays small: the workflow continues as new when Temporal suggests it and
after `continue_as_new_every` rounds, carrying its TrainingProgress in
`TrainingRunConfig.state`; the workflow id stays the same, so queries and stop keep
working. The carried per-round list is bounded (full evaluations of the last rounds
only); the app's database keeps the complete record.

Seeds come from the input only: round r trains on episodes drawn from a seed derived
from (seed, r); evaluation uses the same held-out seed stream every round (so rounds
compare) derived differently from the run's seed, and a `trace:NAME:train` workload is
evaluated on `trace:NAME:heldout`.

A run fired by a Temporal Schedule (POST /training-schedules) comes with an empty run id:
the schedule's one action starts every run, so each takes its id from its own workflow id
(`scheduled_run_id`), which the app derives the same way when it indexes the run.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

from worker.workflows import inference_queue, training_queue

with workflow.unsafe.imports_passed_through():
    from worker.activities.evaluation import evaluate_policy, validate_policy
    from worker.activities.labels import label_round
    from worker.activities.scenario import generate_scenario
    from worker.activities.training import round_seed, store_checkpoint, train_policy
    from worker.contracts import (
        TRAINING_LOOP_WORKFLOW,
        EvaluateInput,
        LabelRoundInput,
        RoundSummary,
        StopRequest,
        StopResult,
        StoreCheckpointInput,
        SyntheticSpec,
        TrainingProgress,
        TrainingRunConfig,
        TrainRoundInput,
        ValidateInput,
        ValidationResult,
        evaluation_seed,
        evaluation_workload,
        scheduled_run_id,
    )

ROUNDS_KEPT = 500
"""Round summaries carried over continue-as-new (older ones live in the app's database)."""
EVALUATIONS_KEPT = 10
"""Rounds whose full evaluation (every heuristic's metrics) is carried over."""
ITERATIONS_KEPT = 20
"""Rounds whose per-iteration metrics the `progress` query still answers: the app indexes
them every reconcile pass (seconds), a round takes longer, so an app that was down for
fewer than this many rounds still catches up on every iteration."""

SCENARIO_OPTIONS = {
    "start_to_close_timeout": timedelta(minutes=2),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5),
}
EVALUATE_OPTIONS = {
    "heartbeat_timeout": timedelta(minutes=1),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=5),
}
STORE_OPTIONS = {
    "start_to_close_timeout": timedelta(minutes=15),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=10),
}
EVALUATE_TIMEOUT = timedelta(minutes=30)
GATE_PATCH = "distill-gate"
"""Marks histories made with the gate: a distilling run started before it replays without."""
DECISIONS_PER_JOB = 3
"""An episode's decisions per job, about at most: its placement, and a WAIT at each of its
events (arrival, completion). A search row's time is bounded by its budget for each."""


def evaluate_timeout(config: TrainingRunConfig) -> timedelta:
    """The league's 30 minutes, plus a search row's budget for every decision it may take."""
    search = config.round_search()
    if search is None:
        return EVALUATE_TIMEOUT
    decisions = config.eval_episodes * config.workload.jobs * DECISIONS_PER_JOB
    return EVALUATE_TIMEOUT + timedelta(milliseconds=search.budget_ms * decisions)


@workflow.defn(name=TRAINING_LOOP_WORKFLOW)
class TrainingLoopWorkflow:
    @workflow.init
    def __init__(self, config: TrainingRunConfig) -> None:
        if not config.run_id:  # fired by a Temporal Schedule: one action starts every run
            config = config.model_copy(update={"run_id": scheduled_run_id(workflow.info().workflow_id)})
        self._config = config
        state = config.state
        self._progress = state.model_copy(deep=True) if state else TrainingProgress(run_id=config.run_id)
        self._finishing = False

    @workflow.run
    async def run(self, config: TrainingRunConfig) -> TrainingProgress:
        config = self._config
        progress = self._progress
        rounds_here = 0
        while not self._done(config):
            suggested = workflow.info().is_continue_as_new_suggested()
            if rounds_here and (rounds_here >= config.continue_as_new_every or suggested):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.logger.info(
                    "run %s continues as new after round %d", config.run_id, progress.rounds_done
                )
                workflow.continue_as_new(config.model_copy(update={"state": progress}))
            round_ = progress.rounds_done + 1
            progress.current_round = round_
            summary = await self._round(config, round_)
            self._record(summary)
            rounds_here += 1
        self._finishing = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        progress.status = "completed"
        progress.current_round = None
        workflow.logger.info("run %s completed after %d rounds", config.run_id, progress.rounds_done)
        return progress

    @workflow.query(name="progress")
    def progress(self) -> TrainingProgress:
        return self._progress

    @workflow.update(name="stop")
    async def stop(self, request: StopRequest) -> StopResult:
        self._progress.status = "stopping"
        self._progress.stop_reason = request.reason or "stopped by request"
        workflow.logger.info("run %s stopping: %s", self._progress.run_id, self._progress.stop_reason)
        return StopResult(rounds_done=self._progress.rounds_done)

    @stop.validator
    def _validate_stop(self, request: StopRequest) -> None:
        progress = self._progress
        if self._finishing or progress.status == "completed":
            raise ValueError(
                f"training run {progress.run_id} has already finished ({progress.rounds_done} rounds); "
                "there is nothing to stop"
            )
        if progress.status == "stopping":
            raise ValueError(
                f"training run {progress.run_id} is already stopping ({progress.stop_reason}); "
                f"it ends after round {progress.current_round or progress.rounds_done}"
            )

    def _done(self, config: TrainingRunConfig) -> bool:
        if self._progress.status == "stopping":
            return True
        return config.max_rounds is not None and self._progress.rounds_done >= config.max_rounds

    async def _round(self, config: TrainingRunConfig, round_: int) -> RoundSummary:
        seed = round_seed(config.seed, round_)
        await workflow.execute_activity(
            generate_scenario,
            SyntheticSpec(workload=config.workload, seed=seed),
            task_queue=inference_queue(),
            **SCENARIO_OPTIONS,
        )
        run_dir = (config.checkpoint_dir or config.run_id).rstrip("/")
        output_dir = f"{run_dir}/round-{round_:04d}"
        iterations = config.iterations_per_round
        labelled = None
        if config.ppo.distill is not None:
            labelled = await workflow.execute_activity(
                label_round,
                LabelRoundInput(
                    run_id=config.run_id,
                    round=round_,
                    config=config.model_copy(update={"state": None}),
                    search=self._labelling_search(config),
                    output_dir=f"{run_dir}/labels/round-{round_:04d}",
                ),
                task_queue=training_queue(),
                start_to_close_timeout=timedelta(hours=2),
                heartbeat_timeout=timedelta(seconds=config.heartbeat_timeout_s),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=30),
                    maximum_attempts=10,
                ),
            )
        trained = await workflow.execute_activity(
            train_policy,
            TrainRoundInput(
                run_id=config.run_id,
                round=round_,
                config=config.model_copy(update={"state": None}),
                resume_from=self._current_checkpoint() or config.resume_from,
                output_dir=output_dir,
                labels=labelled.labels if labelled else None,
            ),
            task_queue=training_queue(),
            start_to_close_timeout=max(timedelta(hours=1), timedelta(minutes=5) * iterations),
            heartbeat_timeout=timedelta(seconds=config.heartbeat_timeout_s),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=10,
            ),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        evaluation = await workflow.execute_activity(
            evaluate_policy,
            EvaluateInput(
                checkpoint=trained.checkpoint,
                workload=evaluation_workload(config.workload),
                episodes=config.eval_episodes,
                seed=evaluation_seed(config.seed),
                objective=config.objective,
                search=config.round_search(),
            ),
            task_queue=training_queue(),
            start_to_close_timeout=evaluate_timeout(config),
            **EVALUATE_OPTIONS,
        )
        validation = await self._validate(config, trained.checkpoint)
        summary = RoundSummary(
            round=round_,
            checkpoint=trained.checkpoint,
            iteration=trained.iteration,
            env_steps=trained.env_steps,
            episode_return_mean=trained.last.episode_return_mean if trained.last else None,
            score=evaluation.ppo.score if evaluation.ppo_value is None else evaluation.ppo_value,
            best_heuristic=evaluation.best_heuristic,
            best_heuristic_score=evaluation.best_heuristic_score,
            gain=evaluation.gain,
            heuristic_scores=evaluation.heuristic_values
            or {m.policy: m.score for m in evaluation.heuristics},
            bound=evaluation.bound,
            search_score=evaluation.search_value,
            evaluation=evaluation,
            finished_at=workflow.now(),
            iterations=trained.history,
            labels=labelled,
            validation_score=validation.score if validation else None,
            accepted=self._accepts(validation) if validation else None,
        )
        stored = await workflow.execute_activity(
            store_checkpoint,
            StoreCheckpointInput(
                run_id=config.run_id,
                round=round_,
                checkpoint=trained.checkpoint,
                output_dir=output_dir,
                summary=summary,
            ),
            task_queue=training_queue(),
            **STORE_OPTIONS,
        )
        summary.checkpoint = stored.checkpoint
        return summary

    async def _validate(self, config: TrainingRunConfig, checkpoint: str) -> ValidationResult | None:
        distill = config.ppo.distill
        if distill is None or not distill.gate or not workflow.patched(GATE_PATCH):
            return None
        return await workflow.execute_activity(
            validate_policy,
            ValidateInput(
                checkpoint=checkpoint,
                workload=config.workload,
                episodes=distill.validation_episodes,
                objective=config.objective,
            ),
            task_queue=training_queue(),
            start_to_close_timeout=EVALUATE_TIMEOUT,
            **EVALUATE_OPTIONS,
        )

    def _accepts(self, validation: ValidationResult) -> bool:
        current = self._progress.current_validation
        return current is None or validation.score >= current

    def _current_checkpoint(self) -> str | None:
        """A state carried over from before the gate has no current checkpoint: its latest is."""
        progress = self._progress
        return progress.current_checkpoint or progress.latest_checkpoint

    def _labelling_search(self, config: TrainingRunConfig) -> str:
        distill = config.ppo.distill
        assert distill is not None
        current = self._current_checkpoint()
        return distill.search if distill.pin or not current else f"search:{current}"

    def _record(self, summary: RoundSummary) -> None:
        progress = self._progress
        progress.rounds.append(summary)
        progress.rounds_done = summary.round
        progress.current_round = None
        progress.latest_checkpoint = summary.checkpoint
        if summary.accepted is not False:
            progress.current_checkpoint = summary.checkpoint
            progress.current_validation = summary.validation_score
        if progress.best_score is None or summary.score > progress.best_score:
            progress.best_score = summary.score
            progress.best_checkpoint = summary.checkpoint
        for old in progress.rounds[:-EVALUATIONS_KEPT]:
            old.evaluation = None
        for old in progress.rounds[:-ITERATIONS_KEPT]:
            old.iterations = []
        del progress.rounds[:-ROUNDS_KEPT]
        workflow.logger.info(
            "run %s round %d: score %.3f (best heuristic %s %.3f)%s",
            progress.run_id,
            summary.round,
            summary.score,
            summary.best_heuristic,
            summary.best_heuristic_score,
            "" if summary.accepted is not False else "; the gate kept the previous checkpoint",
        )
