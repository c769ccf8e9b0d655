"""Deployed policies: what `best` serves per workload class."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.models.base import Input
from worker.contracts import (
    EvaluationEvidence,
    StrictFlag,
    checked,
    path_like_problem,
)


class PolicyDeploy(Input):
    policy: str = Field(
        min_length=1,
        max_length=200,
        description="A checkpoint id (GET /checkpoints) or a heuristic name (edf, sjf+fastest, ...).",
    )
    force: StrictFlag = Field(False, description="Deploy a checkpoint that is not eligible (margin <= 0).")

    @field_validator("policy")
    @classmethod
    def _policy_name(cls, name: str) -> str:
        """A path or URI is a 422 here; an unknown name stays the 409 of the deployment."""
        return checked(path_like_problem(name), name)

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"policy": "edf+fastest", "force": False}]}
    )


class PolicyPublic(BaseModel):
    policy_class: str
    policy: str = Field(description="The checkpoint id or heuristic 'best' serves for this class.")
    kind: Literal["checkpoint", "heuristic"]
    checkpoint_id: str | None = None
    eligible: bool
    margin: float | None = Field(None, description="Objective value minus the best heuristic's, held out.")
    forced: bool = Field(False, description="Deployed with force: true although not eligible.")
    source: Literal["operator", "auto"]
    deployed_at: datetime | None
    evidence: EvaluationEvidence | None = Field(
        None, description="The held-out evaluation: workload, objective, seed, episodes, league values."
    )


class PoliciesPublic(BaseModel):
    data: list[PolicyPublic]
    count: int
    fallback: str = Field(description="What 'best' serves for a class with nothing deployed.")


class PolicyDeployed(PolicyPublic):
    previous: PolicyPublic | None = None
