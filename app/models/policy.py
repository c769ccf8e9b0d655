"""Deployed policies: what `best` serves per workload class, and the searches deployed by
measuring them first (a row per `PUT /policy/{class}` of a `search:` policy)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field as DBField
from sqlmodel import SQLModel

from app.models.base import Input, utcnow
from worker.contracts import (
    SEARCH_PREFIX,
    Deployment,
    EvaluationEvidence,
    EvaluationResult,
    HeldOutLeague,
    SearchDeploymentStatus,
    SearchOptions,
    StrictFlag,
    WorkloadConfig,
    checked,
    path_like_problem,
    search_problem,
)


class PolicyDeploy(Input):
    policy: str = Field(
        min_length=1,
        max_length=200,
        description="A checkpoint id (GET /checkpoints), a heuristic name (edf, sjf+fastest, ...), or "
        "search:<heuristic, tuned or checkpoint id>: a search is measured on the class's held-out "
        "league first (202, poll the Location), and deployed only if it beats the best heuristic there.",
    )
    force: StrictFlag = Field(
        False, description="Deploy a checkpoint or a search that is not eligible (margin <= 0)."
    )
    search: SearchOptions | None = Field(
        None,
        description="A search's options (candidates, rollouts, horizon, budget_ms, ...): measured, "
        "then served.",
    )
    league: HeldOutLeague | None = Field(
        None,
        description="For a search: the held-out league it is measured on (workload, objective, "
        "eval_episodes, seed, as a training run names them); default: the class's workload, 5 episodes, "
        "run seed 0.",
    )

    @field_validator("policy")
    @classmethod
    def _policy_name(cls, name: str) -> str:
        """A path or URI, or a malformed search, is a 422 here; an unknown name stays the
        409 of the deployment."""
        if name.startswith(SEARCH_PREFIX):
            return checked(search_problem(name), name)
        return checked(path_like_problem(name), name)

    @model_validator(mode="after")
    def _search_fields(self) -> PolicyDeploy:
        searching = self.policy.startswith(SEARCH_PREFIX)
        for field in ("search", "league"):
            if getattr(self, field) is not None and not searching:
                raise ValueError(
                    f"{field}: only a search policy (search:<base>) takes it, not {self.policy!r}"
                )
        return self

    @field_validator("search")
    @classmethod
    def _servable(cls, options: SearchOptions | None) -> SearchOptions | None:
        if options is not None and options.futures == "sampled":
            raise ValueError(
                "futures: a deployed search plans the nodes and jobs a plan gives, with no workload "
                "to sample arrivals from; use 'none'"
            )
        return options

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"policy": "edf+fastest", "force": False},
                {"policy": "search:tuned", "search": {"candidates": 8, "budget_ms": 50}},
            ]
        },
    )


class PolicyPublic(BaseModel):
    policy_class: str
    policy: str = Field(description="The checkpoint id, heuristic or search 'best' serves for this class.")
    kind: Literal["checkpoint", "heuristic", "search"]
    checkpoint_id: str | None = None
    search: SearchOptions | None = Field(None, description="A search's options, as measured.")
    runs: str | None = Field(None, description="For search:tuned: the composition `tuned` ran when measured.")
    eligible: bool
    margin: float | None = Field(None, description="Objective value minus the best heuristic's, held out.")
    forced: bool = Field(False, description="Deployed with force: true although not eligible.")
    source: Literal["operator", "auto"]
    deployed_at: datetime | None
    evidence: EvaluationEvidence | None = Field(
        None, description="The held-out evaluation: workload, objective, seed, episodes, league values."
    )


class PolicyDeployed(PolicyPublic):
    previous: PolicyPublic | None = None


def policy_public(deployment: Deployment) -> PolicyPublic:
    evidence = deployment.evidence
    return PolicyPublic(
        policy_class=deployment.policy_class,
        policy=deployment.policy,
        kind=deployment.kind,
        checkpoint_id=deployment.policy if deployment.kind == "checkpoint" else None,
        search=deployment.search,
        runs=deployment.runs,
        eligible=deployment.eligible,
        margin=evidence.margin if evidence is not None else None,
        forced=deployment.forced,
        source=deployment.source,
        deployed_at=deployment.deployed_at,
        evidence=evidence,
    )


def policy_deployed(deployment: Deployment, previous: Deployment | None) -> PolicyDeployed:
    """What a deployment answers: what landed and what it replaced."""
    before = policy_public(previous) if previous is not None else None
    return PolicyDeployed(**policy_public(deployment).model_dump(), previous=before)


class SearchDeployment(SQLModel, table=True):
    """A search deployed by PUT /policy: measured by SearchDeploymentWorkflow, then deployed
    or refused. Temporal has the truth while it runs; this row is what users query."""

    __tablename__ = "search_deployments"
    __table_args__ = (
        Index("ix_search_deployments_created_at", "created_at"),
        Index("ix_search_deployments_status", "status"),
    )

    id: str = DBField(primary_key=True, max_length=64)
    workflow_id: str = DBField(max_length=200)
    policy_class: str = DBField(max_length=200)
    policy: str = DBField(max_length=200)
    force: bool = False
    request: dict[str, Any] = DBField(sa_column=Column(JSON, nullable=False))
    """The workflow's input (contracts.SearchDeploymentInput)."""
    status: str = DBField(default="evaluating", max_length=16)
    result: dict[str, Any] | None = DBField(default=None, sa_column=Column(JSON))
    """The workflow's result (contracts.SearchDeploymentResult)."""
    error: str | None = DBField(default=None, max_length=4000)
    created_at: datetime = DBField(default_factory=utcnow)
    finished_at: datetime | None = None


class SearchDeploymentPublic(BaseModel):
    id: str
    workflow_id: str
    policy_class: str
    policy: str
    force: bool
    status: SearchDeploymentStatus = Field(
        description="evaluating (playing the held-out league), deployed, refused (not eligible: see "
        "`margin` and `detail`) or failed (`detail` says why)."
    )
    search: SearchOptions | None = None
    workload: WorkloadConfig = Field(description="The held-out workload it is measured on.")
    objective: str
    seed: int = Field(description="The held-out evaluation seed.")
    episodes: int
    margin: float | None = Field(None, description="Measured: the search's value minus the best heuristic's.")
    detail: str | None = Field(None, description="Why it was refused, or why it failed.")
    deployment: PolicyDeployed | None = Field(None, description="What landed, once deployed.")
    evaluation: EvaluationResult | None = Field(
        None, description="The whole held-out league, once measured (the search's row is `ppo`)."
    )
    created_at: datetime
    finished_at: datetime | None = None


class PoliciesPublic(BaseModel):
    data: list[PolicyPublic]
    count: int
    fallback: str = Field(description="What 'best' serves for a class with nothing deployed.")
    search_deployments: list[SearchDeploymentPublic] = Field(
        default_factory=list,
        description="The latest searches deployed by PUT /policy, newest first: being measured, "
        "deployed, refused (with the measured margin) or failed.",
    )
