"""Plans (POST /schedule): placements for a cluster's pending jobs by one policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field as DBField
from sqlmodel import SQLModel

from app.models.base import Input, utcnow
from worker.contracts import (
    DEFAULT_POLICY_CLASS,
    POLICY_CLASS_PATTERN,
    SEARCH_PREFIX,
    BaselineOut,
    PlacementOut,
    PlanMetrics,
    PlanSource,
    SearchOptions,
    StrictCount,
    StrictFlag,
    UnplacedOut,
    checked,
    heuristic_problem,
    plan_search_problem,
    policy_class_problem,
    policy_name_problem,
    search_problem,
)

_EXAMPLE_PLAN_BODY = {
    "nodes": [
        {"id": "node-a", "cpus": 64, "memory_gb": 512, "gpus": {"p5": 8}, "status": "OK"},
        {"id": "node-b", "cpus": 32, "gpus": {"p4": 4}, "status": "OK"},
    ],
    "jobs": [
        {
            "id": "train-llm",
            "cpus": 16,
            "gpus": 8,
            "gpu_types": ["p5"],
            "priority": 3,
            "runtime_estimate_s": 7200,
        },
        {"id": "eval", "cpus": 4, "gpus": 1, "priority": 2, "runtime_estimate_s": 600, "deadline_s": 1800},
    ],
    "policy": "best",
}


class PlanCreate(Input, PlanSource):
    policy: str = Field(
        "best",
        min_length=1,
        max_length=200,
        description="'best' (the policy deployed for `class`, GET /policy; a heuristic fallback when "
        "none is), a checkpoint id, or a heuristic: fifo, sjf, edf, priority, packing, random, "
        "edf+fastest, easy:sjf+deadline, ...; or search:<heuristic, tuned or checkpoint id>: "
        "decision-time search over that base (options in `search`).",
    )
    search: SearchOptions | None = Field(
        None, description="Options of a search:<base> policy (candidates, rollouts, horizon, budget_ms, ...)."
    )
    policy_class: str = Field(
        DEFAULT_POLICY_CLASS,
        alias="class",
        pattern=POLICY_CLASS_PATTERN,
        description="Workload class whose deployed policy 'best' means.",
    )
    baseline: str | None = Field(
        "edf",
        description="Heuristic whose plan is returned alongside for comparison; null skips it "
        "(the plan then costs about half).",
    )
    window: StrictCount | None = Field(None, ge=1, le=256, description="Jobs the policy sees per decision.")
    run_async: StrictFlag = Field(
        False, alias="async", description="Answer 202 at once; fetch GET /schedule/{id}."
    )

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, json_schema_extra={"examples": [_EXAMPLE_PLAN_BODY]}
    )

    @field_validator("policy")
    @classmethod
    def _policy_name(cls, name: str) -> str:
        if name == "best":
            return name
        if name.startswith(SEARCH_PREFIX):
            return checked(search_problem(name), name)
        return checked(policy_name_problem(name), name)

    @field_validator("policy_class")
    @classmethod
    def _policy_class(cls, name: str) -> str:
        return checked(policy_class_problem(name), name)

    @model_validator(mode="after")
    def _consistent(self) -> PlanCreate:
        if self.nodes is not None and not self.nodes:
            raise ValueError("nodes: a plan needs at least one node")
        if (
            self.baseline is not None
            and (problem := heuristic_problem(self.baseline, "baseline")) is not None
        ):
            raise ValueError(problem)
        if (problem := plan_search_problem(self.policy, self.search, self.synthetic is not None)) is not None:
            raise ValueError(problem)
        return self


PlanStatus = Literal["running", "completed", "failed", "timed_out"]


class Plan(SQLModel, table=True):
    __tablename__ = "schedule_requests"
    __table_args__ = (Index("ix_schedule_requests_created_at", "created_at"),)

    id: str = DBField(primary_key=True, max_length=64)
    workflow_id: str = DBField(max_length=200)
    status: str = DBField(default="running", max_length=16)
    requested_policy: str = DBField(max_length=200)
    policy: str = DBField(max_length=200)
    checkpoint_id: str | None = DBField(default=None, max_length=200)
    nodes: int = 0
    jobs: int = 0
    notes: list[str] = DBField(default_factory=list, sa_column=Column(JSON))
    result: dict[str, Any] | None = DBField(default=None, sa_column=Column(JSON))
    error: str | None = DBField(default=None, max_length=4000)
    elapsed_ms: float | None = None
    created_at: datetime = DBField(default_factory=utcnow)
    finished_at: datetime | None = None


class PlanPublic(BaseModel):
    id: str
    workflow_id: str
    status: PlanStatus
    requested_policy: str
    policy: str = Field(description="The policy actually used: a heuristic name or a checkpoint id.")
    checkpoint_id: str | None = None
    notes: list[str] = Field(default_factory=list, description="E.g. why a heuristic stood in for 'best'.")
    placements: list[PlacementOut] = Field(default_factory=list)
    unplaced: list[UnplacedOut] = Field(default_factory=list)
    metrics: PlanMetrics | None = None
    baseline: BaselineOut | None = None
    error: str | None = None
    elapsed_ms: float | None = None
    created_at: datetime
    finished_at: datetime | None = None
