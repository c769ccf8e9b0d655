"""The API process is SIGKILLed mid-run and rounds finish while it is down: the restarted
app's reconciler catches the index up, with each round and checkpoint recorded once."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from support.fault_stack import FaultStack, tiny_run, wait_for, wait_run

from worker.contracts import TrainingProgress
from worker.main import connect

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.rl, pytest.mark.timeout(240)]

ROUNDS = 3


def rounds_done_on_temporal(address: str, workflow_id: str) -> int:
    async def query() -> int:
        client = await connect(address=address)
        handle = client.get_workflow_handle(workflow_id)
        return (await handle.query("progress", result_type=TrainingProgress)).rounds_done

    return asyncio.run(query())


def test_index_catches_up_after_an_api_crash(stack: FaultStack) -> None:
    with stack.http() as http:
        created = http.post("/training-runs", json=tiny_run("api-restart", max_rounds=ROUNDS))
        assert created.status_code == 201, created.text
        run = created.json()
        wait_for(
            "round 1 in the index",
            lambda: http.get("/checkpoints", params={"run_id": run["id"]}).json()["count"] >= 1,
            120,
            stack.logs,
        )
    stack.kill_api()
    wait_for(
        "a round to finish while the API is down",
        lambda: rounds_done_on_temporal(stack.temporal_address, run["workflow_id"]) >= 2,
        120,
        stack.logs,
    )
    stack.start_api()
    with stack.http() as http:
        done = wait_run(http, run["id"], ("completed", "failed"), 150, stack)
        assert done["status"] == "completed", done
        assert [r["round"] for r in done["rounds"]] == list(range(1, ROUNDS + 1))
        checkpoints = http.get("/checkpoints", params={"run_id": run["id"]}).json()
        assert sorted(c["round"] for c in checkpoints["data"]) == list(range(1, ROUNDS + 1))
        assert http.get("/training-runs").json()["count"] == len(
            {r["id"] for r in http.get("/training-runs", params={"limit": 100}).json()["data"]}
        )

    with sqlite3.connect(stack.db_file) as db:  # the rows themselves, not just what the API shows
        query = "SELECT round FROM rounds WHERE run_id = ? ORDER BY round"
        rounds = db.execute(query, (run["id"],)).fetchall()
        ckpts = db.execute("SELECT COUNT(*) FROM checkpoints WHERE run_id = ?", (run["id"],)).fetchone()
        runs = db.execute("SELECT COUNT(*) FROM runs WHERE id = ?", (run["id"],)).fetchone()
    assert [r for (r,) in rounds] == list(range(1, ROUNDS + 1))
    assert ckpts == (ROUNDS,) and runs == (1,)
