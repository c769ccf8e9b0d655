"""What differs between the app's two databases, tested on both (SQLite and a real
PostgreSQL server): text PostgreSQL refuses (NUL characters) is a 422 on either, never a
500, and concurrent POST /training-runs with one Idempotency-Key from two app instances
(two processes' worth of engines and event loops on one database) make exactly one run
and one workflow, the losers replaying the winner's answer; and a writer that loses the
race to index a round can apply the same progress again on top of the winner's rows."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.core.config import Settings
from app.db import make_engine, migrate
from app.main import create_app
from app.models import Checkpoint, Round, Run
from app.services.runs import _apply_progress, _save
from worker.contracts import RoundSummary, TrainingProgress

NUL = "\x00"
CLUSTER = {"nodes": [{"id": "a", "cpus": 4}], "jobs": [{"id": "j", "cpus": 1, "runtime_estimate_s": 5}]}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/training-runs/a%00b", None),
        ("get", "/checkpoints/a%00b", None),
        ("get", "/schedule/a%00b", None),
        ("get", "/checkpoints?run_id=a%00b", None),
        ("post", "/training-runs/a%00b/stop", {"reason": "x"}),
        ("post", "/training-runs/x/stop", {"reason": f"a{NUL}b"}),
        ("post", "/schedule", {**CLUSTER, "policy": f"x{NUL}y"}),
        ("post", "/training-runs", {"name": f"a{NUL}b"}),
        ("post", "/training-runs", {"resume_from_checkpoint": f"a{NUL}b"}),
        ("put", "/policy/default", {"policy": f"a{NUL}b"}),
    ],
)
def test_nul_characters_are_a_422_problem_on_every_backend(
    client: TestClient, method: str, path: str, body: dict | None
) -> None:
    response = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "NUL" in response.json()["detail"]


def test_one_idempotency_key_from_two_app_instances_at_once_makes_one_run(
    temporal_address: str, tmp_path: Path, database_url: str
) -> None:
    """No worker polls the queue: starting the workflow is real, training never happens."""
    prefix = f"idem-{uuid.uuid4().hex[:6]}-"
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        temporal_address=temporal_address,
        task_queue_prefix=prefix,
        reconcile_interval_s=0,
    )
    body = {"name": "raced", "max_rounds": 1}
    key = {"Idempotency-Key": f"race-{uuid.uuid4().hex[:8]}"}
    with ExitStack() as stack:
        clients = [stack.enter_context(TestClient(create_app(settings))) for _ in range(2)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda i: clients[i % 2].post("/training-runs", json=body, headers=key), range(8))
            )
        assert {a.status_code for a in answers} <= {200, 201}, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        assert [a.headers.get("idempotent-replayed") for a in answers].count("true") == 7
        with Session(clients[0].app.state.engine) as session:  # type: ignore[attr-defined]
            rows = session.exec(select(Run).where(Run.idempotency_key == key["Idempotency-Key"])).all()
        assert len(rows) == 1 and rows[0].workflow_id == f"training-run-{rows[0].id}"
        other = clients[1].post("/training-runs", json={**body, "name": "other"}, headers=key)
        assert other.status_code == 422 and "different request body" in other.json()["detail"]


def test_a_writer_that_loses_the_race_for_a_round_reapplies_on_top_of_the_winner(
    tmp_path: Path, database_url: str
) -> None:
    """Two app instances refreshing one run both index its new rounds: the one that
    commits second clashes on the unique keys. refresh_run then rolls back and applies
    the progress again, which lands on the winner's rows (the clash is forced here by
    committing the winner from inside the loser's flush)."""
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    engine = make_engine(settings)
    migrate(settings, engine)
    with Session(engine) as session:
        session.add(Run(id="r", workflow_id="training-run-r", config={"workload": {"window": 8}}))
        session.commit()
    progress = TrainingProgress(run_id="r", rounds_done=2, rounds=[_summary(1, 0.6), _summary(2, 0.7)])

    def winner_commits_first(*_: object) -> None:
        with Session(engine) as winner:
            run = winner.get(Run, "r")
            assert run is not None
            _apply_progress(winner, run, progress)
            _save(winner, run)

    with Session(engine) as loser:
        run = loser.get(Run, "r")
        assert run is not None
        event.listen(loser, "before_flush", winner_commits_first, once=True)
        with pytest.raises(IntegrityError):
            _apply_progress(loser, run, progress)
            _save(loser, run)
        loser.rollback()
        run = loser.get(Run, "r")
        assert run is not None
        _apply_progress(loser, run, progress)
        _save(loser, run)
        assert len(loser.exec(select(Round).where(Round.run_id == "r")).all()) == 2
        assert len(loser.exec(select(Checkpoint).where(Checkpoint.run_id == "r")).all()) == 2
        assert run.rounds_done == 2 and run.best_checkpoint_id == "r-r2"
    engine.dispose()


def test_env_step_counts_past_32_bits_are_stored(tmp_path: Path, database_url: str) -> None:
    """A run of about eight days at 3,000 steps/s passes PostgreSQL's INTEGER."""
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    engine = make_engine(settings)
    migrate(settings, engine)
    with Session(engine) as session:
        run = Run(id="long", workflow_id="training-run-long", config={})
        session.add(run)
        summary = _summary(1, 0.6).model_copy(update={"env_steps": 3_000_000_000})
        _apply_progress(session, run, TrainingProgress(run_id="long", rounds_done=1, rounds=[summary]))
        _save(session, run)
    with Session(engine) as session:
        assert session.get(Checkpoint, "long-r1").env_steps == 3_000_000_000  # type: ignore[union-attr]
        assert session.exec(select(Round.env_steps)).one() == 3_000_000_000
    engine.dispose()


def _summary(round_: int, score: float) -> RoundSummary:
    return RoundSummary(
        round=round_,
        checkpoint=f"/ckpt/r{round_}",
        iteration=round_,
        env_steps=round_ * 256,
        score=score,
        best_heuristic="edf",
        best_heuristic_score=0.5,
        gain=score - 0.5,
        heuristic_scores={"edf": 0.5},
        finished_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=round_),
    )
