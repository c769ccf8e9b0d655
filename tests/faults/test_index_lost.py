"""The index database is lost (file deleted while the API is down): the restarted app
rediscovers runs, rounds and checkpoints from Temporal and the artifact store, and the
API shows what it showed before."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select
from support.fault_stack import FaultStack, tiny_run, wait_for, wait_run

from app.core.config import Settings
from app.db import make_engine, migrate
from app.models import Checkpoint, Round, Run
from app.services.rediscover import ROUND_SUMMARY_FILE, index_round_summaries
from worker.contracts import RoundSummary

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.rl, pytest.mark.timeout(240)]

RUN_FIELDS = (
    "id",
    "name",
    "workflow_id",
    "status",
    "rounds_done",
    "best_checkpoint_id",
    "latest_checkpoint_id",
)
CHECKPOINT_FIELDS = ("id", "run_id", "round", "location", "score", "best_heuristic", "iteration")


def snapshot(stack: FaultStack) -> tuple[dict[str, dict], dict[str, dict]]:
    with stack.http() as http:
        runs = http.get("/training-runs", params={"limit": 100}).json()["data"]
        ckpts = http.get("/checkpoints", params={"limit": 100}).json()["data"]
    return (
        {r["id"]: {k: r[k] for k in RUN_FIELDS} for r in runs},
        {c["id"]: {k: c[k] for k in CHECKPOINT_FIELDS} for c in ckpts},
    )


def test_lost_index_is_rebuilt_from_temporal_and_checkpoints(stack: FaultStack) -> None:
    with stack.http() as http:
        if not http.get("/checkpoints").json()["count"]:  # run on its own: make something to lose
            run = http.post("/training-runs", json=tiny_run("index-lost", max_rounds=1)).json()
            wait_run(http, run["id"], ("completed", "failed"), 150, stack)

        def settled() -> bool:
            runs = http.get("/training-runs", params={"limit": 100}).json()["data"]
            return all(r["status"] not in ("running", "stopping") for r in runs)

        wait_for("every run to end", settled, 150, stack.logs)
    runs_before, ckpts_before = snapshot(stack)
    assert ckpts_before

    stack.kill_api()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{stack.db_file}{suffix}").unlink(missing_ok=True)
    stack.start_api()

    def caught_up() -> tuple[dict, dict] | None:
        runs, ckpts = snapshot(stack)
        return (
            (runs, ckpts)
            if runs.keys() >= runs_before.keys() and ckpts.keys() >= ckpts_before.keys()
            else None
        )

    runs_after, ckpts_after = wait_for("the index to be rebuilt", caught_up, 90, stack.logs)
    # Runs started on this queue without the API (the killed-worker test) are found too.
    assert {k: runs_after[k] for k in runs_before} == runs_before
    assert {k: ckpts_after[k] for k in ckpts_before} == ckpts_before
    on_disk = [Path(c["location"]) for c in ckpts_before.values() if Path(c["location"]).is_dir()]
    assert on_disk  # (test_checkpoint_faults deletes one on purpose: it stays indexed)
    assert all((path / ROUND_SUMMARY_FILE).is_file() for path in on_disk)


def summary(round_: int, checkpoint: Path) -> RoundSummary:
    return RoundSummary(
        round=round_,
        checkpoint=str(checkpoint),
        iteration=round_,
        env_steps=256 * round_,
        score=0.5 + round_ / 10,
        best_heuristic="edf",
        best_heuristic_score=0.55,
        gain=round_ / 10 - 0.05,
        heuristic_scores={"edf": 0.55, "fifo": 0.4},
        finished_at=datetime(2026, 1, round_, tzinfo=UTC),
    )


def test_round_summaries_alone_rebuild_runs_whose_workflows_are_gone(tmp_path: Path) -> None:
    """Temporal's retention expired: only the artifact store remembers the run."""
    store = tmp_path / "checkpoints"
    for round_ in (1, 2):
        ckpt = store / "gone123" / f"round-{round_:04d}" / f"iter-{round_:06d}"
        ckpt.mkdir(parents=True)
        (ckpt / ROUND_SUMMARY_FILE).write_text(summary(round_, ckpt).model_dump_json())
        (ckpt / "rlsched.json").write_text(json.dumps({"iteration": round_, "window": 8}))
    (store / "junk" / "round-0001" / "iter-1").mkdir(parents=True)
    (store / "junk" / "round-0001" / "iter-1" / ROUND_SUMMARY_FILE).write_text("{half written")
    settings = Settings(data_dir=tmp_path / "app")
    engine = make_engine(settings)
    migrate(settings, engine)
    with Session(engine) as session:
        assert index_round_summaries(session, store) == 2
        assert index_round_summaries(session, store) == 0  # idempotent
        run = session.get(Run, "gone123")
        assert (
            run is not None and run.status == "failed" and "no longer exists on Temporal" in (run.error or "")
        )
        assert run.rounds_done == 2 and run.best_checkpoint_id == run.latest_checkpoint_id == "gone123-r2"
        assert [r.round for r in session.exec(select(Round).order_by(Round.round)).all()] == [1, 2]
        ckpt = session.get(Checkpoint, "gone123-r1")
        assert ckpt is not None and ckpt.location == str(store / "gone123" / "round-0001" / "iter-000001")
        assert ckpt.window == 8  # from the checkpoint's own metadata: the run's config is gone
        assert session.get(Run, "junk") is None
    engine.dispose()
