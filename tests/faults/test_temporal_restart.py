"""The Temporal server restarts mid-round (its SQLite file kept): the worker and the API
reconnect by themselves and the run completes with every round exactly once."""

from __future__ import annotations

import pytest
from support.fault_stack import TINY_PPO, FaultStack, tiny_run, wait_for, wait_run
from support.history import scheduled_activities

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.rl, pytest.mark.timeout(240)]

ROUNDS = 2


def test_run_survives_a_temporal_restart_mid_round(stack: FaultStack) -> None:
    with stack.http() as http:
        # ~1 s per iteration on 2 cores: the restart lands inside round 1, not after it.
        ppo = {**TINY_PPO, "train_batch_size": 1024, "minibatch_size": 512}
        body = tiny_run("temporal-restart", iterations_per_round=4, ppo=ppo)
        created = http.post("/training-runs", json=body)
        assert created.status_code == 201, created.text
        run = created.json()

        # Mid-round: the training activity has heartbeated at least once.
        wait_for(
            "round 1 to be training",
            lambda: http.get(f"/training-runs/{run['id']}").json().get("live_progress"),
            120,
            stack.logs,
        )
        assert http.get(f"/training-runs/{run['id']}").json()["rounds_done"] == 0
        stack.stop_temporal()
        stack.start_temporal()

        done = wait_run(http, run["id"], ("completed", "failed"), 180, stack)
        assert done["status"] == "completed", done
        assert [r["round"] for r in done["rounds"]] == list(range(1, ROUNDS + 1))
        checkpoints = http.get("/checkpoints", params={"run_id": run["id"]}).json()
        assert sorted(c["round"] for c in checkpoints["data"]) == list(range(1, ROUNDS + 1))

    counts, result = scheduled_activities(stack.temporal_address, run["workflow_id"])
    assert counts["train_policy"] == ROUNDS, counts  # retried within its round, never rescheduled
    assert counts["store_checkpoint"] == ROUNDS, counts
    assert [r.round for r in result.rounds] == list(range(1, ROUNDS + 1))
