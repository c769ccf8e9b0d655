"""Training runs: start, list, inspect (refreshed from Temporal on read), stop."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app.api.deps import SessionDep, SettingsDep, TemporalDep
from app.api.params import RunIdPath, TrainingScheduleIdQuery
from app.errors import Problem
from app.metrics import RUNS_STARTED
from app.models import (
    IterationMetricsPage,
    LeagueMetricsPage,
    MetricsSeries,
    RoundMetricsPage,
    StopAccepted,
    StopBody,
    TrainingRunCreate,
    TrainingRunDetail,
    TrainingRunPublic,
    TrainingRunsPublic,
)
from app.services import history
from app.services import runs as service
from worker.contracts import RunStatus

router = APIRouter(prefix="/training-runs", tags=["training runs"])

READ_REFRESH_BUDGET_S = 2.0

PROBLEMS = {
    404: {"model": Problem, "description": "Unknown run", "content": {"application/problem+json": {}}},
    422: {"model": Problem, "description": "Invalid request", "content": {"application/problem+json": {}}},
    503: {
        "model": Problem,
        "description": "Temporal unreachable",
        "content": {"application/problem+json": {}},
    },
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        **{k: PROBLEMS[k] for k in (422, 503)},
        409: {
            "model": Problem,
            "description": "resume_from_checkpoint's stored location is unusable",
            "content": {"application/problem+json": {}},
        },
    },
    summary="Start a training run",
)
async def create_training_run(
    body: TrainingRunCreate,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Retrying with the same key returns the same run instead of starting another.",
        ),
    ] = None,
) -> TrainingRunPublic:
    run, replayed = await service.create_run(session, temporal, settings, body, idempotency_key)
    response.headers["Location"] = f"/training-runs/{run.id}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        RUNS_STARTED.inc()
    return run


@router.get("", summary="List training runs, newest first")
def list_training_runs(
    session: SessionDep,
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
    schedule_id: TrainingScheduleIdQuery = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TrainingRunsPublic:
    return service.list_runs(session, status, offset, limit, schedule_id)


@router.get("/{run_id}", responses={404: PROBLEMS[404]}, summary="A run: status, rounds, live progress")
async def read_training_run(
    run_id: RunIdPath, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> TrainingRunDetail:
    run = await run_in_threadpool(service.get_run_row, session, run_id)
    # A read waits at most READ_REFRESH_BUDGET_S for Temporal, then answers from the index
    # (`stale: true`); the reconciler keeps trying in the background.
    fresh = await service.refresh_run(session, temporal, settings, run, READ_REFRESH_BUDGET_S)
    return await run_in_threadpool(service.run_detail, session, run, not fresh)


@router.post(
    "/{run_id}/stop",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: PROBLEMS[404],
        409: {
            "model": Problem,
            "description": "Already ended or stopping",
            "content": {"application/problem+json": {}},
        },
        503: PROBLEMS[503],
    },
    summary="Stop a run after its current round (graceful: the round is checkpointed)",
)
async def stop_training_run(
    run_id: RunIdPath,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    body: Annotated[StopBody | None, Body()] = None,
) -> StopAccepted:
    run = await run_in_threadpool(service.get_run_row, session, run_id)
    result = await service.stop_run(session, temporal, settings, run, body.reason if body else None)
    return StopAccepted(id=run.id, rounds_done=result.rounds_done)


CSV = "text/csv"


@router.get(
    "/{run_id}/metrics",
    responses={
        200: {
            "description": "One page of the series: JSON, or CSV (a header row, then one row per "
            "record; nested fields omitted) when the request says `Accept: text/csv`. The CSV's "
            'paging is in the headers `X-Total-Count` and `Link: <...>; rel="next"`.',
            "content": {CSV: {"schema": {"type": "string"}}},
        },
        404: PROBLEMS[404],
    },
    summary="A run's training history: per-iteration learner metrics, per-round scores, the league",
)
async def read_training_metrics(
    run_id: RunIdPath,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    request: Request,
    series: Annotated[
        MetricsSeries,
        Query(
            description="iterations: every PPO iteration (episode return and score, entropy, KL, "
            "losses, env steps/s); rounds: each round's held-out score, best heuristic and bound; "
            "league: every policy's value in every round's evaluation."
        ),
    ] = "iterations",
    offset: Annotated[int, Query(ge=0, le=100_000_000, description="Rows to skip (see next_offset).")] = 0,
    limit: Annotated[int, Query(ge=1, le=5_000, description="Rows per page.")] = 500,
) -> IterationMetricsPage | RoundMetricsPage | LeagueMetricsPage:
    run = await run_in_threadpool(service.get_run_row, session, run_id)
    await service.refresh_run(session, temporal, settings, run, READ_REFRESH_BUDGET_S)
    page = await run_in_threadpool(history.metrics_page, session, run, series, offset, limit)
    if CSV not in request.headers.get("accept", ""):
        return page  # type: ignore[return-value]
    headers = {"X-Total-Count": str(page.count)}
    if page.next_offset is not None:
        following = request.url.include_query_params(offset=page.next_offset, limit=limit, series=series)
        headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return Response(history.page_csv(page), media_type=CSV, headers=headers)  # type: ignore[return-value]
