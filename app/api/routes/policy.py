"""Deployed policies per workload class: what `policy: "best"` in POST /schedule serves."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import SessionDep, SettingsDep, TemporalDep
from app.api.params import PolicyClassPath
from app.errors import Problem
from app.models import PoliciesPublic, PolicyDeploy, PolicyDeployed
from app.services import policy as service

router = APIRouter(prefix="/policy", tags=["policy"])

_PROBLEM = {"application/problem+json": {}}


@router.get(
    "",
    responses={503: {"model": Problem, "content": _PROBLEM}},
    summary="The deployed policy of each workload class, with its evidence",
)
async def list_policies(temporal: TemporalDep, settings: SettingsDep) -> PoliciesPublic:
    return await service.list_policies(temporal, settings)


@router.put(
    "/{policy_class:path}",
    responses={
        409: {
            "model": Problem,
            "description": "Unknown checkpoint, or not eligible (margin <= 0) without force",
            "content": _PROBLEM,
        },
        422: {"model": Problem, "content": _PROBLEM},
        503: {"model": Problem, "content": _PROBLEM},
    },
    summary="Deploy a checkpoint or a heuristic for a workload class; the next plan uses it",
)
async def deploy_policy(
    policy_class: PolicyClassPath,
    body: PolicyDeploy,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> PolicyDeployed:
    return await service.deploy(session, temporal, settings, policy_class, body)
