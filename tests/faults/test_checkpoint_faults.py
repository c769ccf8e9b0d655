"""Broken checkpoints and a full disk: each answers with a clear error, the previous
checkpoint is still listed by GET /checkpoints and still served by POST /schedule, and
nothing of the index is lost."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fault_stack import CLUSTER, FaultStack, tiny_run, wait_for, wait_run
from support.history import scheduled_activities

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.rl, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def two_rounds(stack: FaultStack) -> Iterator[list[dict]]:
    """A finished two-round run's checkpoints, oldest first."""
    with stack.http() as http:
        run = http.post("/training-runs", json=tiny_run("checkpoint-faults", max_rounds=2)).json()
        wait_run(http, run["id"], ("completed",), 150, stack)
        ckpts = http.get("/checkpoints", params={"run_id": run["id"], "order": "time"}).json()["data"]
    yield sorted(ckpts, key=lambda c: c["round"])


def plan(stack: FaultStack, policy: str) -> tuple[int, dict]:
    with stack.http() as http:
        response = http.post("/schedule", json={**CLUSTER, "policy": policy})
    return response.status_code, response.json()


def all_checkpoints(stack: FaultStack) -> dict:
    with stack.http() as http:
        return http.get("/checkpoints", params={"limit": 100}).json()


def test_corrupt_or_missing_checkpoint_is_a_clear_error(stack: FaultStack, two_rounds: list[dict]) -> None:
    previous, broken = two_rounds
    status, body = plan(stack, previous["id"])
    assert status == 200 and body["checkpoint_id"] == previous["id"], body
    index = all_checkpoints(stack)

    # Half-written: every file of the checkpoint cut to half its size.
    for path in Path(broken["location"]).rglob("*"):
        if path.is_file() and path.stat().st_size:
            os.truncate(path, path.stat().st_size // 2)
    status, body = plan(stack, broken["id"])
    assert status == 422, body
    assert broken["location"] in body["detail"], body  # names the path, as the README promises

    shutil.rmtree(broken["location"])  # the artifact directory is gone
    status, body = plan(stack, broken["id"])
    assert status == 422, body
    assert "not found" in body["detail"] or "does not exist" in body["detail"], body
    assert broken["location"] in body["detail"], body

    status, body = plan(stack, previous["id"])
    assert status == 200 and body["checkpoint_id"] == previous["id"], body
    assert all_checkpoints(stack) == index


def test_full_disk_while_saving_fails_the_round_clearly_and_keeps_the_last_checkpoint(
    stack: FaultStack,
) -> None:
    with stack.http() as http:
        run = http.post("/training-runs", json=tiny_run("disk-full", max_rounds=2)).json()
        stack.disk_full_flag.write_text(f"{run['id']}/round-0002/")
        try:
            failing = wait_for(
                "the full disk to show in the run's error",
                lambda: (r := http.get(f"/training-runs/{run['id']}").json())["error"] and r,
                150,
                stack.logs,
            )
            assert failing["status"] == "running" and failing["rounds_done"] == 1, failing
            assert "train_policy failed" in failing["error"] and "no space left" in failing["error"].lower()
            ckpts = http.get("/checkpoints", params={"run_id": run["id"]}).json()["data"]
            assert [c["round"] for c in ckpts] == [1]
            status, body = plan(stack, ckpts[0]["id"])
            assert status == 200 and body["checkpoint_id"] == ckpts[0]["id"], body
            round_dir = stack.checkpoints / run["id"] / "round-0002"
            assert not list(round_dir.glob("*.partial")), list(round_dir.iterdir())  # no half checkpoint
        finally:
            stack.disk_full_flag.unlink(missing_ok=True)  # space freed: the next retry succeeds

        done = wait_run(http, run["id"], ("completed", "failed"), 150, stack)
        assert done["status"] == "completed" and done["error"] is None, done
        assert [r["round"] for r in done["rounds"]] == [1, 2]
    counts, _ = scheduled_activities(stack.temporal_address, run["workflow_id"])
    assert counts["train_policy"] == 2, counts
