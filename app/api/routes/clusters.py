"""Registered real clusters (Slurm): register one (its control loop starts), list them,
read one with its counters and last tick, page its decision history, end its loop."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from starlette.concurrency import run_in_threadpool

from app.api.deps import SessionDep, SettingsDep, TemporalDep
from app.api.params import ClusterNamePath
from app.errors import Problem
from app.models import (
    ClusterCreate,
    ClusterDecisionsPage,
    ClusterPublic,
    ClusterRegistered,
    ClustersPublic,
    ClusterStopping,
)
from app.services import clusters as service

router = APIRouter(prefix="/clusters", tags=["clusters"])

READ_REFRESH_BUDGET_S = 2.0


def _problem(description: str) -> dict:
    return {"model": Problem, "description": description, "content": {"application/problem+json": {}}}


NOT_FOUND = _problem("No cluster of that name is registered")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        409: _problem("A cluster of that name is registered and its loop still runs"),
        422: _problem(
            "Invalid field (the message names it), an endpoint outside RLSCHED_CLUSTER_ENDPOINTS, "
            "or no slurm.conf at the endpoint on the worker"
        ),
        503: _problem(
            "The controller did not answer or refused the worker, or no worker or Temporal answered"
        ),
    },
    summary="Register a cluster: check that it answers, then start its control loop",
)
async def register_cluster(
    body: ClusterCreate, session: SessionDep, temporal: TemporalDep, settings: SettingsDep, response: Response
) -> ClusterRegistered:
    registered = await service.register(session, temporal, settings, body)
    response.headers["Location"] = f"/clusters/{registered.name}"
    return registered


@router.get("", summary="List registered clusters, newest first (from the index)")
def list_clusters(
    session: SessionDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ClustersPublic:
    return service.list_clusters(session, offset, limit)


@router.get(
    "/{name}", responses={404: NOT_FOUND}, summary="A cluster: registration, loop state, counters, last tick"
)
async def read_cluster(
    name: ClusterNamePath, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> ClusterPublic:
    row = await run_in_threadpool(service.get_row, session, name)
    fresh = await service.refresh_cluster(session, temporal, settings, row, READ_REFRESH_BUDGET_S)
    return await run_in_threadpool(service.cluster_detail, session, row, not fresh)


@router.get(
    "/{name}/decisions",
    responses={404: NOT_FOUND},
    summary="A cluster's decision history: its ticks, newest first, each with its decisions",
)
async def read_cluster_decisions(
    name: ClusterNamePath,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    offset: Annotated[int, Query(ge=0, le=100_000_000, description="Ticks to skip (see next_offset).")] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="Ticks per page.")] = 50,
) -> ClusterDecisionsPage:
    row = await run_in_threadpool(service.get_row, session, name)
    await service.refresh_cluster(session, temporal, settings, row, READ_REFRESH_BUDGET_S)
    return await run_in_threadpool(service.decisions_page, session, row, offset, limit)


@router.delete(
    "/{name}",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: NOT_FOUND,
        409: _problem("The loop has already ended"),
        503: _problem("Temporal unreachable"),
    },
    summary="End a cluster's loop (cancelled on Temporal); Slurm keeps scheduling by itself",
)
async def stop_cluster(
    name: ClusterNamePath, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> ClusterStopping:
    row = await run_in_threadpool(service.get_row, session, name)
    return await service.stop_cluster(session, temporal, settings, row)
