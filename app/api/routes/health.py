"""Liveness, readiness (what must hold for requests to succeed) and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import EngineDep, SettingsDep, TemporalDep
from app.db import migration_state
from app.errors import ProblemError
from app.models import Health, Readiness, ReadinessCheck
from worker.contracts import ArtifactStoreOptions
from worker.storage import artifact_store_problem

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    responses={503: {"model": Readiness, "description": "Not ready; `checks` says what is missing"}},
    summary="Database migrated, Temporal reachable, a worker polling both task queues, "
    "the artifact store readable (when it is remote)",
)
async def readyz(
    engine: EngineDep, temporal: TemporalDep, settings: SettingsDep, response: Response
) -> Readiness:
    checks: dict[str, ReadinessCheck] = {}
    try:
        current, head = await asyncio.to_thread(migration_state, engine)
        checks["database"] = ReadinessCheck(
            ok=current == head and head is not None,
            detail=f"schema at {current}, head {head}"
            + ("" if current == head else ": run `rlsched migrate`"),
        )
    except SQLAlchemyError as error:
        checks["database"] = ReadinessCheck(
            ok=False, detail=f"database unreachable: {error.__class__.__name__}"
        )
    try:
        pollers = await temporal.pollers((settings.training_queue, settings.inference_queue))
        checks["temporal"] = ReadinessCheck(ok=True, detail=f"connected to {settings.temporal_address}")
        for queue, counts in pollers.items():
            ok = counts["workflow"] > 0 and counts["activity"] > 0
            checks[f"worker:{queue}"] = ReadinessCheck(
                ok=ok,
                detail=f"{counts['workflow']} workflow and {counts['activity']} activity pollers"
                + ("" if ok else "; start one with `rlsched worker`"),
            )
    except ProblemError as error:
        checks["temporal"] = ReadinessCheck(ok=False, detail=error.detail)
    except Exception as error:  # an RPC failure is a readiness answer, not a 500
        checks["temporal"] = ReadinessCheck(ok=False, detail=f"{settings.temporal_address}: {error}")
    if (store := settings.store_options) is not None:
        checks["artifact_store"] = await _store_check(store, settings.store_check_timeout_s)
    ready = all(check.ok for check in checks.values()) and len(checks) >= 4
    if not ready:
        response.status_code = 503
    return Readiness(ready=ready, checks=checks)


async def _store_check(options: ArtifactStoreOptions, timeout_s: float) -> ReadinessCheck:
    """Read access to the checkpoint store, through pyarrow as the worker opens it: plans
    and evaluations of stored checkpoints fail without it."""
    try:
        problem = await asyncio.wait_for(asyncio.to_thread(artifact_store_problem, options), timeout_s)
    except TimeoutError:
        problem = f"artifact store {options.uri}: no answer within {timeout_s:g} s"
    if problem is not None:
        return ReadinessCheck(ok=False, detail=problem)
    return ReadinessCheck(ok=True, detail=f"{options.uri} readable")


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
