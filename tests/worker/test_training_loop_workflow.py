"""TrainingLoopWorkflow's orchestration against stand-in activities (same names and
contracts as the real ones, no RL): progress query, the stop update and its validator,
continue-as-new carrying the state, and replay of the recorded histories.

The real activities run in test_training_loop_rl.py; these stay fast so the workflow's
own logic is checked in seconds.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from support.workers import queues, tiny_run
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.worker import Replayer, Worker

from worker.codec import DATA_CONVERTER
from worker.contracts import (
    DistillParams,
    EvaluateInput,
    EvaluationResult,
    LabelRoundInput,
    LabelRoundOutput,
    PolicyMetrics,
    ScenarioSummary,
    SearchOptions,
    StopRequest,
    StoreCheckpointInput,
    StoredCheckpoint,
    SyntheticSpec,
    TrainingProgress,
    TrainRoundInput,
    TrainRoundOutput,
    ValidateInput,
    ValidationResult,
)
from worker.main import connect
from worker.workflows.scheduler import SchedulerWorkflow
from worker.workflows.smoke import SmokeWorkflow
from worker.workflows.training_loop import TrainingLoopWorkflow

pytestmark = pytest.mark.integration


class FakeActivities:
    """Stand-ins that record their inputs; training waits for `gate` when one is set."""

    def __init__(self) -> None:
        self.gate: asyncio.Event | None = None
        self.trained: list[TrainRoundInput] = []
        self.evaluated: list[EvaluateInput] = []
        self.labelled: list[LabelRoundInput] = []
        self.validated: list[ValidateInput] = []
        self.validation_scores: list[float] = []
        """What validate_policy answers, round by round (a distilling run's gate)."""
        self.training_started = asyncio.Event()

    def activities(self) -> list[Any]:
        @activity.defn(name="generate_scenario")
        async def generate_scenario(spec: SyntheticSpec) -> ScenarioSummary:
            return ScenarioSummary(workload=spec.workload.name, seed=spec.seed, nodes=4, jobs=40)

        @activity.defn(name="train_policy")
        async def train_policy(input: TrainRoundInput) -> TrainRoundOutput:
            self.trained.append(input)
            self.training_started.set()
            if self.gate is not None:
                await self.gate.wait()
            iteration = input.round * input.config.iterations_per_round
            return TrainRoundOutput(
                checkpoint=f"/ckpt/{input.output_dir}/iter-{iteration:06d}",
                iteration=iteration,
                env_steps=iteration * 256,
                elapsed_s=0.1,
            )

        @activity.defn(name="evaluate_policy")
        async def evaluate_policy(input: EvaluateInput) -> EvaluationResult:
            self.evaluated.append(input)
            score = 0.5 + 0.1 * len(self.evaluated) * (-1 if len(self.evaluated) == 2 else 1)
            searched = input.search is not None
            return EvaluationResult(
                ppo=_metrics("ppo", score),
                heuristics=[_metrics("fifo", 0.5), _metrics("edf", 0.6)],
                best_heuristic="edf",
                best_heuristic_score=0.6,
                gain=score - 0.6,
                bound=0.95,
                search=_metrics("search:ppo", score + 0.05) if searched else None,
                search_value=score + 0.05 if searched else None,
            )

        @activity.defn(name="label_round")
        async def label_round(input: LabelRoundInput) -> LabelRoundOutput:
            self.labelled.append(input)
            labels = f"/labels/{input.output_dir}"
            return LabelRoundOutput(labels=labels, search=input.search, episodes=1, decisions=9, elapsed_s=0)

        @activity.defn(name="validate_policy")
        async def validate_policy(input: ValidateInput) -> ValidationResult:
            self.validated.append(input)
            score = self.validation_scores[len(self.validated) - 1]
            return ValidationResult(score=score, tuned_score=0.9, episodes=input.episodes)

        @activity.defn(name="store_checkpoint")
        async def store_checkpoint(input: StoreCheckpointInput) -> StoredCheckpoint:
            return StoredCheckpoint(checkpoint=input.checkpoint)

        return [
            generate_scenario,
            train_policy,
            evaluate_policy,
            label_round,
            validate_policy,
            store_checkpoint,
        ]


def _metrics(policy: str, score: float) -> PolicyMetrics:
    return PolicyMetrics(
        policy=policy,
        score=score,
        mean_bounded_slowdown=1.0,
        p95_bounded_slowdown=1.0,
        mean_wait=0.0,
        gpu_utilization=0.5,
        cpu_utilization=0.5,
        makespan=1.0,
        jobs_finished=40,
    )


async def _with_fake_worker(address: str, fakes: FakeActivities, body: Any) -> Any:
    prefix = f"t-{uuid.uuid4().hex[:8]}-"
    training, inference = queues(prefix)
    client = await connect(address=address)
    activities = fakes.activities()
    workers = [
        Worker(client, task_queue=training, workflows=[TrainingLoopWorkflow], activities=activities),
        Worker(client, task_queue=inference, activities=activities),
    ]
    async with workers[0], workers[1]:
        return await body(client, training)


async def _replay(client: Client, workflow_id: str) -> None:
    """Replays every run of `workflow_id` (continue-as-new chains) against the code."""
    replayer = Replayer(
        workflows=[TrainingLoopWorkflow, SchedulerWorkflow, SmokeWorkflow],
        data_converter=DATA_CONVERTER,
    )
    histories = client.list_workflows(f"WorkflowId = '{workflow_id}'").map_histories()
    results = await replayer.replay_workflows(histories, raise_on_replay_failure=True)
    assert results.replay_failures == {}


def test_stop_is_graceful_and_validated(temporal_address: str) -> None:
    fakes = FakeActivities()

    async def body(client: Client, task_queue: str) -> None:
        fakes.gate = asyncio.Event()
        workflow_id = f"training-run-{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow(
            TrainingLoopWorkflow.run, tiny_run("r1", max_rounds=None), id=workflow_id, task_queue=task_queue
        )
        await asyncio.wait_for(fakes.training_started.wait(), 10)
        progress = await handle.query(TrainingLoopWorkflow.progress)
        assert (progress.status, progress.current_round, progress.rounds_done) == ("running", 1, 0)

        result = await handle.execute_update(TrainingLoopWorkflow.stop, StopRequest(reason="enough"))
        assert (result.status, result.rounds_done) == ("stopping", 0)
        with pytest.raises(WorkflowUpdateFailedError) as second:
            await handle.execute_update(TrainingLoopWorkflow.stop, StopRequest())
        assert "already stopping (enough)" in str(second.value.cause)
        assert (await handle.query(TrainingLoopWorkflow.progress)).status == "stopping"

        fakes.gate.set()  # the running round finishes, is evaluated and stored
        final: TrainingProgress = await handle.result()
        assert final.status == "completed"
        assert final.stop_reason == "enough"
        assert final.rounds_done == 1 and [r.round for r in final.rounds] == [1]
        assert final.latest_checkpoint == final.best_checkpoint == final.rounds[0].checkpoint
        assert len(fakes.trained) == 1

        with pytest.raises(Exception, match=r"(?i)complet|finished|closed"):
            await handle.execute_update(TrainingLoopWorkflow.stop, StopRequest())
        await _replay(client, workflow_id)

    asyncio.run(_with_fake_worker(temporal_address, fakes, body))


def test_rounds_resume_from_the_latest_checkpoint_and_continue_as_new(temporal_address: str) -> None:
    fakes = FakeActivities()

    async def body(client: Client, task_queue: str) -> None:
        workflow_id = f"training-run-{uuid.uuid4().hex[:8]}"
        config = tiny_run("r2", max_rounds=5, continue_as_new_every=2, seed=7)
        handle = await client.start_workflow(
            TrainingLoopWorkflow.run, config, id=workflow_id, task_queue=task_queue
        )
        final = await handle.result()
        assert final.status == "completed" and final.rounds_done == 5
        assert [r.round for r in final.rounds] == [1, 2, 3, 4, 5]
        # Evaluation scores: 0.6, 0.3, 0.8, 0.9, 1.0 -> the best is round 5's.
        assert final.best_checkpoint == final.rounds[-1].checkpoint
        assert final.rounds[0].evaluation is not None

        # Each round resumes from the previous round's stored checkpoint, across runs.
        resumed = [t.resume_from for t in fakes.trained]
        assert resumed == [None] + [r.checkpoint for r in final.rounds[:-1]]
        assert all(t.config.state is None for t in fakes.trained)
        # Every round trains on its own seed; evaluation always uses the same held-out one.
        assert len({t.output_dir for t in fakes.trained}) == 5
        assert len({e.seed for e in fakes.evaluated}) == 1

        description = await handle.describe()
        assert description.run_id != handle.first_execution_run_id  # continued as new
        runs = [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
        assert len(runs) == 3  # rounds 1-2, 3-4, 5
        await _replay(client, workflow_id)

    asyncio.run(_with_fake_worker(temporal_address, fakes, body))


def test_trace_train_split_is_evaluated_on_its_heldout_split(temporal_address: str) -> None:
    fakes = FakeActivities()

    async def body(client: Client, task_queue: str) -> None:
        config = tiny_run("r3", max_rounds=1)
        config.workload = config.workload.model_copy(update={"name": "trace:alibaba-default:train"})
        await client.execute_workflow(
            TrainingLoopWorkflow.run, config, id=f"training-run-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        assert fakes.evaluated[0].workload.name == "trace:alibaba-default:heldout"
        assert fakes.trained[0].config.workload.name == "trace:alibaba-default:train"

    asyncio.run(_with_fake_worker(temporal_address, fakes, body))


def test_a_run_asking_for_it_evaluates_the_search_over_each_rounds_checkpoint(temporal_address: str) -> None:
    fakes = FakeActivities()

    async def body(client: Client, task_queue: str) -> None:
        plain = tiny_run("r4", max_rounds=1)
        searched = tiny_run("r5", max_rounds=2, eval_search={"enabled": True, "options": {"candidates": 4}})
        for config in (plain, searched):
            final = await client.execute_workflow(
                TrainingLoopWorkflow.run,
                config,
                id=f"training-run-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )
        assert fakes.evaluated[0].search is None
        assert [e.search for e in fakes.evaluated[1:]] == [SearchOptions(candidates=4, depth=1)] * 2
        assert [r.search_score for r in final.rounds] == pytest.approx([r.score + 0.05 for r in final.rounds])
        assert [r.bound for r in final.rounds] == [0.95, 0.95]

    asyncio.run(_with_fake_worker(temporal_address, fakes, body))


def test_a_gated_distilling_run_builds_on_the_last_round_its_gate_kept(temporal_address: str) -> None:
    """Round 2 scores below round 1 on validation episodes: round 3 resumes from round 1's
    checkpoint and labels with the search over it, not over the collapsed round 2."""
    fakes = FakeActivities()
    fakes.validation_scores = [0.95, 0.70, 0.96, 0.80]

    async def body(client: Client, task_queue: str) -> None:
        workflow_id = f"training-run-{uuid.uuid4().hex[:8]}"
        config = tiny_run("r-gate", max_rounds=4, continue_as_new_every=3)
        config = config.model_copy(
            update={"ppo": config.ppo.model_copy(update={"distill": DistillParams(validation_episodes=3)})}
        )
        handle = await client.start_workflow(
            TrainingLoopWorkflow.run, config, id=workflow_id, task_queue=task_queue
        )
        final = await handle.result()
        checkpoints = [r.checkpoint for r in final.rounds]
        assert [r.accepted for r in final.rounds] == [True, False, True, False]
        assert [r.validation_score for r in final.rounds] == fakes.validation_scores
        resumed = [t.resume_from for t in fakes.trained]
        assert resumed == [None, checkpoints[0], checkpoints[0], checkpoints[2]]
        assert [label.search for label in fakes.labelled] == [
            "search:tuned",
            f"search:{checkpoints[0]}",
            f"search:{checkpoints[0]}",
            f"search:{checkpoints[2]}",
        ]
        assert (final.current_checkpoint, final.current_validation) == (checkpoints[2], 0.96)
        assert final.latest_checkpoint == checkpoints[3]
        assert all(v.episodes == 3 and v.checkpoint in checkpoints for v in fakes.validated)
        await _replay(client, workflow_id)

    asyncio.run(_with_fake_worker(temporal_address, fakes, body))


def test_an_ungated_distilling_run_builds_on_its_latest_round(temporal_address: str) -> None:
    fakes = FakeActivities()

    async def body(client: Client, task_queue: str) -> None:
        config = tiny_run("r-nogate", max_rounds=2)
        distill = DistillParams(gate=False)
        config = config.model_copy(update={"ppo": config.ppo.model_copy(update={"distill": distill})})
        final = await client.execute_workflow(
            TrainingLoopWorkflow.run, config, id=f"training-run-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        assert fakes.validated == []
        assert [r.accepted for r in final.rounds] == [None, None]
        assert fakes.trained[1].resume_from == final.rounds[0].checkpoint
        assert final.current_checkpoint == final.latest_checkpoint == final.rounds[1].checkpoint

    asyncio.run(_with_fake_worker(temporal_address, fakes, body))
