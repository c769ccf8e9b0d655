"""Two training workers; the one labelling a distilling run's round is SIGKILLed (its
whole process group, Ray and all) after some episodes are in the store. The other
picks the label step up after the heartbeat timeout and labels only the episodes still
missing: the round's labels hold every seed exactly once, and the label step was
scheduled once."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from support.fault_stack import TINY_PPO, TINY_WORKLOAD, FaultStack, wait_for
from support.history import pending_heartbeat, scheduled_activities, started_activities

from worker.contracts import LabelHeartbeat, TrainingProgress, TrainingRunConfig, WorkloadConfig
from worker.main import connect

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.rl, pytest.mark.timeout(300)]

EPISODES = 10


def test_surviving_worker_labels_only_the_missing_episodes(stack: FaultStack) -> None:
    from worker.rl.labels import metadata_of, read_labels

    second = stack.start_worker()
    wait_for("the second worker to serve", lambda: "serving" in second.log_file.read_text(), 120, stack.logs)
    distill = {
        "search": "search:sjf+fastest",
        "episodes_per_round": EPISODES,
        "options": {"candidates": 12, "depth": 3, "budget_ms": 60_000},  # ~4 s an episode here
    }
    config = TrainingRunConfig(
        run_id=f"kill-label-{uuid.uuid4().hex[:6]}",
        workload=WorkloadConfig.model_validate(TINY_WORKLOAD),
        ppo={**TINY_PPO, "distill": distill},
        iterations_per_round=1,
        max_rounds=1,
        eval_episodes=1,
        heartbeat_timeout_s=5,
    )

    async def body() -> tuple[int, str]:
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
            attempt = await pending_heartbeat(client, handle, "label_round", LabelHeartbeat)
            if attempt is not None and attempt[0].episodes_done >= 2:
                break
            await asyncio.sleep(0.1)
        assert attempt is not None and 2 <= attempt[0].episodes_done < EPISODES, attempt
        pid = int(attempt[1].split("@", 1)[0])
        [victim] = [w for w in stack.workers if w.pid == pid]
        [survivor] = [w for w in stack.workers if w is not victim]
        stack.kill_worker(victim)
        final = await asyncio.wait_for(handle.result(), 200)
        assert [r.round for r in final.rounds] == [1]
        return attempt[0].episodes_done, str(survivor.pid)

    done_before_kill, survivor_pid = asyncio.run(body())
    workflow_id = f"training-run-{config.run_id}"
    counts, _ = scheduled_activities(stack.temporal_address, workflow_id)
    assert counts["label_round"] == 1, counts
    [(identity, attempt)] = started_activities(stack.temporal_address, workflow_id, "label_round")
    assert identity.split("@", 1)[0] == survivor_pid and attempt >= 2, (identity, attempt)
    labels = read_labels(stack.checkpoints / config.run_id / "labels" / "round-0001")
    seeds = metadata_of(labels)["seeds"]
    assert len(seeds) == len(set(seeds)) == EPISODES
    stored = labels.column("episode_seed").to_pylist()
    assert sorted(set(stored)) == sorted(seeds)
    starts = [i for i, s in enumerate(stored) if i == 0 or stored[i - 1] != s]
    assert len(starts) == EPISODES, "each episode's decisions once, in one block"
    [survivor] = [w for w in stack.workers if str(w.pid) == survivor_pid]
    log = survivor.log_file.read_text(errors="replace")
    assert "round 1 resumes labelling at episode" in log, log[-2000:]
    resumed_at = int(log.split("round 1 resumes labelling at episode ", 1)[1].split("/", 1)[0])
    assert resumed_at >= done_before_kill
