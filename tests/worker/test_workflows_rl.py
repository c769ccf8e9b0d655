"""The workflows with the real activities: tiny PPO training in-process (one Ray per
test process), real evaluation, real inference from the new checkpoints."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from support.workers import TINY_PPO, fresh_prefix, queues, running_workers, tiny_run, training_heartbeat
from temporalio.client import Client
from temporalio.worker import Replayer

from worker.codec import DATA_CONVERTER
from worker.contracts import HEURISTIC_POLICIES, PolicyRef, SmokeInput, StopRequest
from worker.workflows.scheduler import SchedulerWorkflow
from worker.workflows.smoke import SmokeWorkflow
from worker.workflows.training_loop import EVALUATIONS_KEPT, TrainingLoopWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.rl]


async def replay(client: Client, workflow_id: str) -> None:
    replayer = Replayer(
        workflows=[TrainingLoopWorkflow, SchedulerWorkflow, SmokeWorkflow],
        data_converter=DATA_CONVERTER,
    )
    histories = client.list_workflows(f"WorkflowId = '{workflow_id}'").map_histories()
    results = await replayer.replay_workflows(histories, raise_on_replay_failure=True)
    assert results.replay_failures == {}


def test_smoke_then_schedule_with_its_checkpoint(temporal_address: str, data_dir: Path) -> None:
    from test_scheduler_workflow import cluster_request

    async def body() -> None:
        prefix = fresh_prefix()
        training, inference = queues(prefix)
        async with running_workers(temporal_address, prefix) as client:
            smoke_id = f"smoke-{uuid.uuid4().hex[:8]}"
            report = await client.execute_workflow(
                SmokeWorkflow.run, SmokeInput(iterations=2), id=smoke_id, task_queue=training
            )
            assert (report.nodes, report.jobs) == (4, 40)
            assert report.iterations == 2 and report.env_steps >= 2 * 256
            assert report.placed + report.unplaced == 40
            assert 0.0 <= report.score <= 1.0 and 0.0 <= report.baseline_score <= 1.0
            assert Path(report.checkpoint).is_dir()
            assert Path(report.checkpoint).is_relative_to(data_dir)

            # The same checkpoint serves a 16-node, 100-job request (sizes it never saw).
            request = cluster_request(PolicyRef(kind="checkpoint", name="ppo", checkpoint=report.checkpoint))
            schedule_id = f"schedule-{uuid.uuid4()}"
            out = await client.execute_workflow(
                SchedulerWorkflow.run, request, id=schedule_id, task_queue=inference
            )
            assert out.policy == "ppo" and out.checkpoint == report.checkpoint
            assert len(out.placements) + len(out.unplaced) == 100
            assert out.baseline is not None and out.baseline.policy == "edf"
            await replay(client, smoke_id)
            await replay(client, schedule_id)

    asyncio.run(body())


def test_training_loop_two_rounds_then_stop(temporal_address: str, data_dir: Path) -> None:
    async def body() -> None:
        prefix = fresh_prefix()
        async with running_workers(temporal_address, prefix) as client:
            workflow_id = f"training-run-{uuid.uuid4().hex[:8]}"
            # ~1 s iterations, so a heartbeat reaches the server while round 1 trains.
            slower = TINY_PPO.model_copy(update={"train_batch_size": 1024, "minibatch_size": 512})
            config = tiny_run("two-rounds", max_rounds=None, iterations_per_round=2, ppo=slower)
            handle = await client.start_workflow(
                TrainingLoopWorkflow.run, config, id=workflow_id, task_queue=queues(prefix)[0]
            )
            # Live progress while a round trains: the query, and describe()'s heartbeat
            # (heartbeats reach the server at most once a second, so poll a while).
            deadline = time.monotonic() + 120
            beat = None
            while beat is None or beat.progress is None:
                assert time.monotonic() < deadline, "no heartbeat with iteration progress"
                beat = await training_heartbeat(client, handle)
                await asyncio.sleep(0.05)
            assert beat.progress.env_steps > 0 and beat.progress.iterations_in_round == beat.iterations_done
            progress = await handle.query(TrainingLoopWorkflow.progress)
            assert progress.status == "running" and progress.current_round is not None

            while (await handle.query(TrainingLoopWorkflow.progress)).current_round in (None, 1):
                assert time.monotonic() < deadline, "round 2 never started"
                await asyncio.sleep(0.05)
            stop = await handle.execute_update(TrainingLoopWorkflow.stop, StopRequest(reason="test"))
            assert stop.status == "stopping" and stop.rounds_done >= 1

            final = await asyncio.wait_for(handle.result(), 180)
            assert final.status == "completed" and final.stop_reason == "test"
            # The round running at the stop finished; no further round started.
            assert final.rounds_done == stop.rounds_done + 1
            assert [r.round for r in final.rounds] == list(range(1, final.rounds_done + 1))
            # Each round resumed the previous round's policy: the iteration count goes on.
            assert [r.iteration for r in final.rounds] == [2 * r.round for r in final.rounds]
            first, second = final.rounds[:2]
            assert second.env_steps > first.env_steps
            # Rounds compare with the league's standard set, `tuned` included, and the bound.
            # (A slow first heartbeat can let many rounds pass before the stop: only the
            # newest EVALUATIONS_KEPT rounds keep their full evaluation, so check the last.)
            last = final.rounds[-1]
            assert {*HEURISTIC_POLICIES, "tuned", "sjf+fastest"} <= set(last.heuristic_scores)
            assert last.evaluation is not None and last.evaluation.bound is not None
            assert last.best_heuristic_score == max(last.heuristic_scores.values())
            assert last.gain == pytest.approx(last.score - last.best_heuristic_score)
            assert all(r.evaluation is None for r in final.rounds[:-EVALUATIONS_KEPT])
            assert final.latest_checkpoint == final.rounds[-1].checkpoint
            assert final.best_score == max(r.score for r in final.rounds)
            assert final.best_checkpoint in {
                r.checkpoint for r in final.rounds if r.score == final.best_score
            }
            for summary in final.rounds:
                assert (Path(summary.checkpoint) / "rlsched-round.json").is_file()
                assert f"two-rounds/round-{summary.round:04d}" in summary.checkpoint
            await replay(client, workflow_id)

    asyncio.run(body())


def test_a_distilling_run_labels_with_the_search_before_each_round(
    temporal_address: str, data_dir: Path
) -> None:
    from worker.contracts import DistillParams
    from worker.contracts.search import SearchOptions
    from worker.rl.labels import metadata_of, read_labels

    async def body() -> None:
        prefix = fresh_prefix()
        async with running_workers(temporal_address, prefix) as client:
            workflow_id = f"training-run-{uuid.uuid4().hex[:8]}"
            distill = DistillParams(
                search="search:sjf+fastest",
                weight=1.0,
                episodes_per_round=2,
                options=SearchOptions(candidates=4, depth=1, budget_ms=10_000),
                validation_episodes=2,
            )
            config = tiny_run("distilling", ppo=TINY_PPO.model_copy(update={"distill": distill}))
            final = await client.execute_workflow(
                TrainingLoopWorkflow.run, config, id=workflow_id, task_queue=queues(prefix)[0]
            )
            assert final.rounds_done == 2
            seeds, searches = [], []
            for summary in final.rounds:
                labels = read_labels(
                    data_dir / "checkpoints" / "distilling" / "labels" / f"round-{summary.round:04d}"
                )
                meta = metadata_of(labels)
                assert len(meta["seeds"]) == 2 and labels.num_rows > 0
                seeds.append(meta["seeds"])
                searches.append(meta["search"])
                assert summary.labels is not None and summary.labels.search == meta["search"]
                assert summary.labels.decisions == labels.num_rows
                # The learner reports what it imitated and how far it is from it, per iteration.
                last = summary.iterations[-1]
                assert (last.distill_episodes, last.distill_decisions) == (2, labels.num_rows)
                assert last.distill_cross_entropy is not None and last.distill_value_loss is not None
                assert last.distill_agreement is not None and 0 <= last.distill_agreement <= 1
                # A distilling run evaluates the search over each round's checkpoint by default.
                assert summary.evaluation is not None and summary.evaluation.search is not None
                assert summary.search_score is not None
                assert summary.search_score == summary.evaluation.search_value
                assert summary.bound is not None
                # The gate scored the round on training-side validation episodes.
                assert summary.validation_score is not None and summary.accepted is not None
            assert final.rounds[0].accepted, "the first round has nothing to lose to"
            assert seeds[0] != seeds[1], "each round labels fresh training episodes"
            # Expert iteration: round 2 searches over round 1's policy.
            assert searches == ["search:sjf+fastest", f"search:{final.rounds[0].checkpoint}"]
            assert [r.iteration for r in final.rounds] == [2, 4]
            await replay(client, workflow_id)

    asyncio.run(body())
