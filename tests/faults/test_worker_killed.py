"""Two training workers serve the same queues; the one running the round is SIGKILLed
(its whole process group: Ray and all, like a lost machine). The other picks the round
up after the heartbeat timeout and resumes at the heartbeat's iteration from its
checkpoint: the round ends at exactly `iterations_per_round`, scheduled once."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from support.fault_stack import TINY_PPO, TINY_WORKLOAD, FaultStack, wait_for
from support.history import pending_heartbeat, scheduled_activities, started_activities

from worker.contracts import TrainingHeartbeat, TrainingProgress, TrainingRunConfig, WorkloadConfig
from worker.main import connect
from worker.stack import Child

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.rl, pytest.mark.timeout(240)]

ITERATIONS = 6


def test_surviving_worker_resumes_the_killed_workers_round(stack: FaultStack) -> None:
    second = stack.start_worker()
    wait_for(
        "the second worker to serve",
        lambda: "serving" in second.log_file.read_text(),
        120,
        stack.logs,
    )
    config = TrainingRunConfig(
        run_id=f"kill-{uuid.uuid4().hex[:6]}",
        workload=WorkloadConfig.model_validate(TINY_WORKLOAD),
        ppo={**TINY_PPO, "train_batch_size": 1024, "minibatch_size": 512},
        iterations_per_round=ITERATIONS,
        max_rounds=1,
        eval_episodes=1,
        checkpoint_every=1,
        heartbeat_timeout_s=5,
    )

    async def body() -> tuple[int, str, Child]:
        client = await connect(address=stack.temporal_address)
        handle = await client.start_workflow(
            "TrainingLoopWorkflow",
            config,
            id=f"training-run-{config.run_id}",
            task_queue=stack.prefix + "rl-training",
            result_type=TrainingProgress,
        )
        deadline = time.monotonic() + 150
        attempt = None
        while time.monotonic() < deadline:
            attempt = await pending_heartbeat(client, handle, "train_policy", TrainingHeartbeat)
            if attempt is not None and attempt[0].iterations_done >= 2 and attempt[0].checkpoint:
                break
            await asyncio.sleep(0.2)
        assert attempt is not None and attempt[0].iterations_done < ITERATIONS, attempt
        pid = int(attempt[1].split("@", 1)[0])
        [victim] = [w for w in stack.workers if w.pid == pid]
        [survivor] = [w for w in stack.workers if w is not victim]
        stack.kill_worker(victim)  # the survivor stays as the stack's worker

        settle = time.monotonic() + 20
        beat = (await pending_heartbeat(client, handle, "train_policy", TrainingHeartbeat) or attempt)[0]
        while not beat.checkpoint and time.monotonic() < settle:
            await asyncio.sleep(0.2)
            beat = (await pending_heartbeat(client, handle, "train_policy", TrainingHeartbeat) or attempt)[0]
        final = await asyncio.wait_for(handle.result(), 150)
        assert [r.round for r in final.rounds] == [1]
        assert final.rounds[0].iteration == ITERATIONS  # counted on, neither restarted nor doubled
        return beat.iterations_done, beat.checkpoint or "", survivor

    resumed_at, checkpoint, survivor = asyncio.run(body())
    assert [w.pid for w in stack.workers] == [survivor.pid] and survivor.running
    workflow_id = f"training-run-{config.run_id}"
    counts, _ = scheduled_activities(stack.temporal_address, workflow_id)
    assert counts["train_policy"] == 1, counts
    [(identity, attempt)] = started_activities(stack.temporal_address, workflow_id, "train_policy")
    assert identity.split("@", 1)[0] == str(survivor.pid) and attempt >= 2, (identity, attempt, survivor.pid)
    resumed = f"round 1 resumes at iteration {resumed_at}/{ITERATIONS} from {checkpoint}"
    assert resumed in survivor.log_file.read_text(errors="replace")
