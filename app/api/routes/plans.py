"""Placement plans: a policy (trained checkpoint or heuristic) applied to a cluster state."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import SessionDep, SettingsDep, TemporalDep
from app.api.params import PlanIdPath
from app.errors import Problem
from app.metrics import SCHEDULE_PLANS
from app.models import PlanCreate, PlanPublic
from app.services import plans as service

router = APIRouter(prefix="/schedule", tags=["schedule"])
"""Plans keep the first release's path, tag and operation ids: clients call them and
generated clients name their methods after them."""

_PROBLEM = {"application/problem+json": {}}


@router.post(
    "",
    responses={
        202: {"model": PlanPublic, "description": "Accepted (`async: true`): fetch GET /schedule/{id}"},
        413: {"model": Problem, "description": "Body too large", "content": _PROBLEM},
        422: {"model": Problem, "description": "Invalid cluster, jobs or policy", "content": _PROBLEM},
        409: {"model": Problem, "description": "The checkpoint is unusable", "content": _PROBLEM},
        502: {"model": Problem, "description": "The scheduling workflow failed", "content": _PROBLEM},
        503: {"model": Problem, "description": "Temporal unreachable", "content": _PROBLEM},
        504: {
            "model": Problem,
            "description": "No plan in time; carries id and workflow_id",
            "content": _PROBLEM,
        },
    },
    summary="Plan where pending jobs go",
    operation_id="create_schedule_schedule_post",
)
async def create_plan(
    body: PlanCreate,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    response: Response,
) -> PlanPublic:
    timings: dict[str, float] = {}
    try:
        plan, code = await service.create_plan(session, temporal, settings, body, timings)
    except Exception:
        SCHEDULE_PLANS.labels("unknown", "error").inc()
        raise
    kind = "checkpoint" if plan.checkpoint_id else "heuristic"
    SCHEDULE_PLANS.labels(kind, "accepted" if code == 202 else "completed").inc()
    response.status_code = code
    response.headers["Server-Timing"] = ", ".join(f"{k};dur={v:.2f}" for k, v in timings.items())
    if code == 202:
        response.headers["Location"] = f"/schedule/{plan.id}"
    return plan


@router.get(
    "/{request_id}",
    responses={404: {"model": Problem, "content": _PROBLEM}},
    summary="A plan request and, once done, its plan",
    operation_id="read_schedule_schedule__request_id__get",
)
async def read_plan(
    request_id: PlanIdPath, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> PlanPublic:
    return await service.get_plan(session, temporal, settings, request_id)
