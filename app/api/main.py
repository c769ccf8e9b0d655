"""Everything under the API's URL space, gathered in one place."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.deps import reject_unknown_query, require_api_key, require_json_body
from app.api.routes import checkpoints, clusters, health, plans, policy, training_runs, training_schedules

api_router = APIRouter()
api_router.include_router(health.router, dependencies=[Depends(reject_unknown_query)])
# The key is enforced app-wide by app.auth.ApiKeyMiddleware; this dependency declares it
# in the OpenAPI document (and checks it again).
_protected = [Depends(require_api_key), Depends(require_json_body), Depends(reject_unknown_query)]
api_router.include_router(training_runs.router, dependencies=_protected)
api_router.include_router(training_schedules.router, dependencies=_protected)
api_router.include_router(plans.router, dependencies=_protected)
api_router.include_router(checkpoints.router, dependencies=_protected)
api_router.include_router(policy.router, dependencies=_protected)
api_router.include_router(policy.deployments, dependencies=_protected)
api_router.include_router(clusters.router, dependencies=_protected)
