"""Everything under the API's URL space, gathered in one place."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.deps import require_api_key
from app.api.routes import checkpoints, health, policy, schedule, training_runs, training_schedules

api_router = APIRouter()
api_router.include_router(health.router)
_protected = [Depends(require_api_key)]
api_router.include_router(training_runs.router, dependencies=_protected)
api_router.include_router(training_schedules.router, dependencies=_protected)
api_router.include_router(schedule.router, dependencies=_protected)
api_router.include_router(checkpoints.router, dependencies=_protected)
api_router.include_router(policy.router, dependencies=_protected)
