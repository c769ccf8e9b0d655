"""The index as users read it: runs, rounds and checkpoints recorded from workflow progress
(applied here directly, as the reconciler would), paging, filters, ordering, and what
reads do when Temporal cannot be asked. Temporal is unreachable on purpose. Every test
runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models import Run
from app.services.runs import _apply_progress
from worker.contracts import RoundSummary, TrainingProgress


def summary(round_: int, score: float) -> RoundSummary:
    return RoundSummary(
        round=round_,
        checkpoint=f"/ckpt/r{round_}",
        iteration=round_ * 2,
        env_steps=round_ * 512,
        score=score,
        best_heuristic="edf",
        best_heuristic_score=0.5,
        gain=score - 0.5,
        heuristic_scores={"edf": 0.5, "fifo": 0.4},
        finished_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=round_),
    )


def add_run(client: TestClient, run_id: str, status: str, scores: list[float], minutes: int) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        run = Run(
            id=run_id,
            workflow_id=f"training-run-{run_id}",
            status=status,
            config={"workload": {"name": "steady", "window": 16}},
            created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes),
        )
        session.add(run)
        progress = TrainingProgress(
            run_id=run_id, rounds_done=len(scores), rounds=[summary(i + 1, s) for i, s in enumerate(scores)]
        )
        _apply_progress(session, run, progress)
        session.add(run)
        session.commit()


def test_runs_are_listed_newest_first_with_paging_and_status_filter(client: TestClient) -> None:
    add_run(client, "old", "completed", [0.6], 0)
    add_run(client, "mid", "failed", [], 1)
    add_run(client, "new", "completed", [0.7, 0.8], 2)
    page = client.get("/training-runs?limit=2").json()
    assert page["count"] == 3 and [r["id"] for r in page["data"]] == ["new", "mid"]
    assert [r["id"] for r in client.get("/training-runs?offset=2").json()["data"]] == ["old"]
    completed = client.get("/training-runs?status=completed").json()
    assert completed["count"] == 2 and {r["id"] for r in completed["data"]} == {"new", "old"}


def test_run_detail_has_rounds_and_best_and_latest_checkpoints(client: TestClient) -> None:
    add_run(client, "r1", "completed", [0.9, 0.7], 0)
    run = client.get("/training-runs/r1").json()
    assert run["status"] == "completed" and run["rounds_done"] == 2 and run["stale"] is False
    assert [r["round"] for r in run["rounds"]] == [1, 2]
    assert run["rounds"][0]["heuristic_scores"] == {"edf": 0.5, "fifo": 0.4}
    assert run["best_checkpoint_id"] == "r1-r1" and run["latest_checkpoint_id"] == "r1-r2"


def test_a_live_run_read_while_temporal_is_down_is_served_stale(client: TestClient) -> None:
    add_run(client, "live", "running", [0.6], 0)
    run = client.get("/training-runs/live").json()
    assert run["status"] == "running" and run["stale"] is True and run["rounds_done"] == 1


def test_stopping_an_ended_run_is_409(client: TestClient) -> None:
    add_run(client, "done", "completed", [0.6], 0)
    response = client.post("/training-runs/done/stop", json={"reason": "enough"})
    assert response.status_code == 409 and "already ended" in response.json()["detail"]


def test_checkpoints_by_score_or_time_and_by_run(client: TestClient) -> None:
    add_run(client, "a", "completed", [0.6, 0.9], 0)
    add_run(client, "b", "completed", [0.7], 1)
    by_score = client.get("/checkpoints").json()
    assert by_score["count"] == 3
    assert [c["id"] for c in by_score["data"]] == ["a-r2", "b-r1", "a-r1"]
    by_time = client.get("/checkpoints?order=time").json()
    assert [c["id"] for c in by_time["data"]] == ["a-r2", "b-r1", "a-r1"]  # a-r1, b-r1 tie: id desc
    only_a = client.get("/checkpoints?run_id=a&limit=1").json()
    assert only_a["count"] == 2 and len(only_a["data"]) == 1
    ckpt = client.get("/checkpoints/b-r1").json()
    assert ckpt["run_id"] == "b" and ckpt["round"] == 1 and ckpt["location"] == "/ckpt/r1"
    assert ckpt["heuristic_scores"]["edf"] == 0.5 and ckpt["window"] == 16


def test_recording_the_same_progress_twice_is_idempotent(client: TestClient) -> None:
    add_run(client, "x", "running", [0.5], 0)
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        run = session.get(Run, "x")
        assert run is not None
        _apply_progress(session, run, TrainingProgress(run_id="x", rounds_done=1, rounds=[summary(1, 0.5)]))
        session.commit()
    assert client.get("/checkpoints?run_id=x").json()["count"] == 1
    assert len(client.get("/training-runs/x").json()["rounds"]) == 1


def test_rounds_and_checkpoints_say_whether_they_are_eligible(client: TestClient) -> None:
    """Eligible = beat the best heuristic on held-out seeds (margin = score - best > 0)."""
    add_run(client, "a", "completed", [0.4, 0.5, 0.9], 0)
    rounds = client.get("/training-runs/a").json()["rounds"]
    assert [(r["eligible"], round(r["margin"], 3)) for r in rounds] == [
        (False, -0.1),
        (False, 0.0),
        (True, 0.4),
    ]
    checkpoints = {c["id"]: c for c in client.get("/checkpoints?run_id=a").json()["data"]}
    assert checkpoints["a-r3"]["eligible"] and not checkpoints["a-r1"]["eligible"]


def test_checkpoint_ids_and_heuristics_resolve_from_the_index(client: TestClient) -> None:
    from app.services.plans import resolve_policy

    engine = client.app.state.engine  # type: ignore[attr-defined]
    settings = client.app.state.settings  # type: ignore[attr-defined]
    add_run(client, "a", "completed", [0.6, 0.9], 0)
    with Session(engine) as session:
        policy, window, _ = resolve_policy(session, settings, "a-r2")
        assert (policy.kind, policy.name, policy.checkpoint, window) == ("checkpoint", "a-r2", "/ckpt/r2", 16)
        policy, window, _ = resolve_policy(session, settings, "edf+fastest")
        assert (policy.kind, policy.name, window) == ("heuristic", "edf+fastest", None)
