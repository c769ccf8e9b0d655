"""Training schedules: recurring training runs on Temporal Schedules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status
from starlette.concurrency import run_in_threadpool

from app.api.deps import SessionDep, SettingsDep, TemporalDep
from app.api.params import TrainingScheduleIdPath
from app.errors import Problem
from app.models import (
    ScheduleNoteBody,
    ScheduleTriggerBody,
    ScheduleTriggered,
    TrainingScheduleCreate,
    TrainingSchedulePublic,
    TrainingSchedulesPublic,
)
from app.services import training_schedules as service

router = APIRouter(prefix="/training-schedules", tags=["training schedules"])


def _problem(description: str) -> dict:
    return {"model": Problem, "description": description, "content": {"application/problem+json": {}}}


NOT_FOUND = _problem("Unknown schedule (or deleted on Temporal)")
UNPROCESSABLE = _problem("Invalid request: bad interval or cron, both or neither, bad run body")
UNAVAILABLE = _problem("Temporal unreachable")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={422: UNPROCESSABLE, 503: UNAVAILABLE},
    summary="Create a schedule that starts a training run every interval or on a cron",
)
async def create_training_schedule(
    body: TrainingScheduleCreate,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    response: Response,
) -> TrainingSchedulePublic:
    created = await service.create_schedule(session, temporal, settings, body)
    response.headers["Location"] = f"/training-schedules/{created.id}"
    return created


@router.get("", summary="List schedules, newest first, with Temporal's state of each")
async def list_training_schedules(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TrainingSchedulesPublic:
    return await service.list_schedules(session, temporal, settings, offset, limit)


@router.get(
    "/{schedule_id}",
    responses={404: NOT_FOUND},
    summary="A schedule: definition, paused, next and recent runs (from Temporal)",
)
async def read_training_schedule(
    schedule_id: TrainingScheduleIdPath, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> TrainingSchedulePublic:
    row = await run_in_threadpool(service.get_row, session, schedule_id)
    return await service.read_schedule(session, temporal, settings, row)


@router.post(
    "/{schedule_id}/pause",
    responses={404: NOT_FOUND, 503: UNAVAILABLE},
    summary="Pause: no runs start until unpaused (a trigger still starts one)",
)
async def pause_training_schedule(
    schedule_id: TrainingScheduleIdPath,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    body: Annotated[ScheduleNoteBody | None, Body()] = None,
) -> TrainingSchedulePublic:
    row = await run_in_threadpool(service.get_row, session, schedule_id)
    return await service.set_paused(session, temporal, settings, row, True, body.note if body else None)


@router.post(
    "/{schedule_id}/unpause",
    responses={404: NOT_FOUND, 503: UNAVAILABLE},
    summary="Unpause: runs start again at the next due time",
)
async def unpause_training_schedule(
    schedule_id: TrainingScheduleIdPath,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    body: Annotated[ScheduleNoteBody | None, Body()] = None,
) -> TrainingSchedulePublic:
    row = await run_in_threadpool(service.get_row, session, schedule_id)
    return await service.set_paused(session, temporal, settings, row, False, body.note if body else None)


@router.post(
    "/{schedule_id}/trigger",
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: NOT_FOUND, 503: UNAVAILABLE},
    summary="Start a run now (paused or not); it appears in GET /training-runs?schedule_id= shortly",
)
async def trigger_training_schedule(
    schedule_id: TrainingScheduleIdPath,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    body: Annotated[ScheduleTriggerBody | None, Body()] = None,
) -> ScheduleTriggered:
    row = await run_in_threadpool(service.get_row, session, schedule_id)
    overlap = body.overlap if body else ScheduleTriggerBody().overlap
    return await service.trigger(session, temporal, settings, row, overlap)


@router.delete(
    "/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: NOT_FOUND, 503: UNAVAILABLE},
    summary="Delete the schedule on Temporal; runs it started keep going and stay listed",
)
async def delete_training_schedule(
    schedule_id: TrainingScheduleIdPath, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> Response:
    row = await run_in_threadpool(service.get_row, session, schedule_id)
    await service.delete_schedule(session, temporal, settings, row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
