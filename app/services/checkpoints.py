"""Checkpoints in the index: recorded from a run's round summaries, looked up by the ids
the app hands out. The id is the app's own (`<run id>-r<round>`): stable, short, and the
same whoever records it first (a read or the reconciler), so recording is idempotent."""

from __future__ import annotations

from typing import Literal

from sqlmodel import Session, col, func, select

from app.errors import Conflict, NotFound
from app.models import Checkpoint, CheckpointPublic, CheckpointsPublic, Run
from worker.contracts import RoundSummary, location_problem


def checkpoint_id(run_id: str, round_: int) -> str:
    return f"{run_id}-r{round_}"


ROUND_SCORE_FIELDS = ("iteration", "env_steps", "score", "best_heuristic", "best_heuristic_score")


def copy_round_scores(row: object, summary: RoundSummary) -> None:
    """Rounds and checkpoints both index a round's evaluation: one copy of the mapping."""
    for name in ROUND_SCORE_FIELDS:
        setattr(row, name, getattr(summary, name))
    row.margin = summary.gain  # type: ignore[attr-defined]  # the wire keeps its first name
    row.heuristic_scores = dict(summary.heuristic_scores)  # type: ignore[attr-defined]


def record_checkpoint(session: Session, run: Run, summary: RoundSummary) -> Checkpoint:
    ckpt = session.get(Checkpoint, checkpoint_id(run.id, summary.round))
    if ckpt is None:
        ckpt = Checkpoint(
            id=checkpoint_id(run.id, summary.round),
            run_id=run.id,
            round=summary.round,
            location=summary.checkpoint,
            window=int(run.config.get("workload", {}).get("window", 32)),
        )
        if summary.finished_at is not None:
            ckpt.created_at = summary.finished_at
    ckpt.location = summary.checkpoint
    copy_round_scores(ckpt, summary)
    if summary.evaluation is not None:
        ckpt.metrics = summary.evaluation.ppo.model_dump(mode="json")
        ckpt.heuristics = [h.model_dump(mode="json") for h in summary.evaluation.heuristics]
    session.add(ckpt)
    return ckpt


def list_checkpoints(
    session: Session,
    run_id: str | None,
    order: Literal["score", "time"],
    offset: int,
    limit: int,
) -> CheckpointsPublic:
    query = select(Checkpoint)
    count_query = select(func.count()).select_from(Checkpoint)
    if run_id is not None:
        query = query.where(Checkpoint.run_id == run_id)
        count_query = count_query.where(Checkpoint.run_id == run_id)
    if order == "score":
        query = query.order_by(col(Checkpoint.score).desc(), col(Checkpoint.created_at).desc())
    else:
        query = query.order_by(col(Checkpoint.created_at).desc(), col(Checkpoint.id).desc())
    rows = session.exec(query.offset(offset).limit(limit)).all()
    count = session.exec(count_query).one()
    return CheckpointsPublic(
        data=[CheckpointPublic.model_validate(r, from_attributes=True) for r in rows], count=count
    )


def get_checkpoint(session: Session, ckpt_id: str) -> Checkpoint:
    ckpt = session.get(Checkpoint, ckpt_id)
    if ckpt is None:
        raise NotFound(f"no checkpoint {ckpt_id!r}; GET /checkpoints lists them")
    return ckpt


def usable_location(ckpt: Checkpoint) -> str:
    """The checkpoint's stored location, checked as the worker's contracts will check it:
    a row the contracts would refuse is a 409 naming the checkpoint, not a 500."""
    if ckpt.location and (problem := location_problem(ckpt.location, "stored location")) is not None:
        raise Conflict(f"checkpoint {ckpt.id!r} cannot be used: {problem}")
    return ckpt.location
