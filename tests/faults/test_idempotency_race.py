"""Ten clients retry the same POST /training-runs at once with one Idempotency-Key: one
run (one row, one workflow), and all ten answers name it."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from support.fault_stack import FaultStack, tiny_run

from worker.contracts import TRAINING_LOOP_WORKFLOW
from worker.main import connect

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(120)]

CLIENTS = 10


async def training_workflows_since(address: str, queue: str, since: datetime) -> list[str]:
    client = await connect(address=address)
    query = (
        f"WorkflowType = '{TRAINING_LOOP_WORKFLOW}' AND TaskQueue = '{queue}' "
        f"AND StartTime > '{since.isoformat().replace('+00:00', 'Z')}'"
    )
    return [w.id async for w in client.list_workflows(query)]


async def terminate(address: str, workflow_id: str) -> None:
    client = await connect(address=address)
    await client.get_workflow_handle(workflow_id).terminate(reason="idempotency test done")


def test_parallel_retries_with_one_key_make_one_run(stack: FaultStack) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    body = tiny_run("idempotent", max_rounds=1)
    key = f"race-{since.timestamp()}"

    def post(_: int) -> tuple[int, dict, str | None]:
        with stack.http() as http:
            response = http.post("/training-runs", json=body, headers={"Idempotency-Key": key})
            return response.status_code, response.json(), response.headers.get("idempotent-replayed")

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(post, range(CLIENTS)))

    assert {status for status, _, _ in answers} == {201}, answers
    ids = {body["id"] for _, body, _ in answers}
    assert len(ids) == 1, answers
    assert sorted(replayed or "false" for _, _, replayed in answers) == ["false"] + ["true"] * (CLIENTS - 1)
    [run_id] = ids

    with sqlite3.connect(stack.db_file) as db:
        rows = db.execute("SELECT id FROM runs WHERE idempotency_key = ?", (key,)).fetchall()
    assert rows == [(run_id,)]
    started = asyncio.run(
        training_workflows_since(stack.temporal_address, stack.prefix + "rl-training", since)
    )
    assert started == [f"training-run-{run_id}"]
    asyncio.run(terminate(stack.temporal_address, f"training-run-{run_id}"))  # free the worker
