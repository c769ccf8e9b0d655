"""Deployed policies per workload class: what `policy: "best"` in POST /schedule serves, and
the searches being measured before they may serve it.

Search deployments live under their own prefix: every path under /policy/ is a class
(`PUT /policy/{class:path}`: trace:swf: classes contain '/')."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import SessionDep, SettingsDep, TemporalDep
from app.api.params import PolicyClassPath, SearchDeploymentIdPath
from app.errors import Problem
from app.models import PoliciesPublic, PolicyDeploy, PolicyDeployed, SearchDeploymentPublic
from app.services import policy as service
from app.services import search_deployments
from worker.contracts import SEARCH_PREFIX

router = APIRouter(prefix="/policy", tags=["policy"])
deployments = APIRouter(prefix="/policy-deployments", tags=["policy"])

_PROBLEM = {"application/problem+json": {}}


@router.get(
    "",
    responses={503: {"model": Problem, "content": _PROBLEM}},
    summary="The deployed policy of each workload class, with its evidence",
)
async def list_policies(session: SessionDep, temporal: TemporalDep, settings: SettingsDep) -> PoliciesPublic:
    return await service.list_policies(session, temporal, settings)


@deployments.get(
    "/{deployment_id}",
    responses={404: {"model": Problem, "content": _PROBLEM}},
    summary="A search deployment: being measured, deployed, refused (with its margin) or failed",
)
async def read_search_deployment(
    deployment_id: SearchDeploymentIdPath, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> SearchDeploymentPublic:
    return await search_deployments.get_search_deployment(session, temporal, settings, deployment_id)


@router.put(
    "/{policy_class:path}",
    responses={
        202: {
            "model": SearchDeploymentPublic,
            "description": "A search: accepted and being measured on the class's held-out league; "
            "poll the Location (GET /policy-deployments/{id})",
        },
        409: {
            "model": Problem,
            "description": "Unknown checkpoint, or not eligible (margin <= 0) without force",
            "content": _PROBLEM,
        },
        422: {"model": Problem, "content": _PROBLEM},
        503: {"model": Problem, "content": _PROBLEM},
    },
    summary="Deploy a checkpoint, a heuristic or a search for a workload class; the next plan uses it",
)
async def deploy_policy(
    policy_class: PolicyClassPath,
    body: PolicyDeploy,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    response: Response,
) -> PolicyDeployed | SearchDeploymentPublic:
    if body.policy.startswith(SEARCH_PREFIX):
        pending = await search_deployments.start_search_deployment(
            session, temporal, settings, policy_class, body
        )
        response.status_code = 202
        response.headers["Location"] = f"/policy-deployments/{pending.id}"
        return pending
    return await service.deploy(session, temporal, settings, policy_class, body)
