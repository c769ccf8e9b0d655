"""Checkpoints recorded from training runs' rounds; their ids are what POST /schedule takes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.api.deps import SessionDep
from app.api.params import CheckpointIdPath, RunIdQuery
from app.errors import Problem
from app.models import CheckpointPublic, CheckpointsPublic
from app.services import checkpoints as service

router = APIRouter(prefix="/checkpoints", tags=["checkpoints"])


@router.get("", summary="List checkpoints, best score or newest first")
def list_checkpoints(
    session: SessionDep,
    run_id: RunIdQuery = None,
    order: Annotated[
        Literal["score", "time"], Query(description="score: best first; time: newest first.")
    ] = "score",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CheckpointsPublic:
    return service.list_checkpoints(session, run_id, order, offset, limit)


@router.get(
    "/{checkpoint_id}",
    responses={404: {"model": Problem, "content": {"application/problem+json": {}}}},
    summary="A checkpoint: metrics, heuristics' scores on the same evaluation, run and round",
)
def read_checkpoint(checkpoint_id: CheckpointIdPath, session: SessionDep) -> CheckpointPublic:
    return CheckpointPublic.model_validate(
        service.get_checkpoint(session, checkpoint_id), from_attributes=True
    )
