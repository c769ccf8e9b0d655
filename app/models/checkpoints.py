"""Checkpoints: a round's stored policy and its held-out evaluation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import JSON, BigInteger, Column, Index
from sqlmodel import Field as DBField
from sqlmodel import SQLModel

from app.models.base import Eligibility, utcnow
from worker.contracts import (
    PolicyMetrics,
)


class Checkpoint(SQLModel, table=True):
    __tablename__ = "checkpoints"
    __table_args__ = (
        Index("ix_checkpoints_score", "score"),
        Index("ix_checkpoints_created_at", "created_at"),
    )

    id: str = DBField(primary_key=True, max_length=200)
    run_id: str = DBField(foreign_key="runs.id", max_length=64, index=True)
    round: int
    location: str = DBField(max_length=2000)
    iteration: int = 0
    env_steps: int = DBField(default=0, sa_type=BigInteger)
    score: float = 0.0
    best_heuristic: str = ""
    best_heuristic_score: float = 0.0
    margin: float = 0.0
    heuristic_scores: dict[str, float] = DBField(default_factory=dict, sa_column=Column(JSON))
    metrics: dict[str, Any] | None = DBField(default=None, sa_column=Column(JSON))
    heuristics: list[dict[str, Any]] | None = DBField(default=None, sa_column=Column(JSON))
    window: int = 32
    created_at: datetime = DBField(default_factory=utcnow)


class CheckpointPublic(Eligibility):
    id: str
    run_id: str
    round: int
    location: str = Field(description="Where the worker stored it (path or URI).")
    iteration: int
    env_steps: int
    score: float
    best_heuristic: str
    best_heuristic_score: float
    heuristic_scores: dict[str, float]
    metrics: PolicyMetrics | None = Field(None, description="The PPO policy's evaluation metrics.")
    heuristics: list[PolicyMetrics] | None = Field(None, description="Heuristics on the same episodes.")
    window: int
    created_at: datetime


class CheckpointsPublic(BaseModel):
    data: list[CheckpointPublic]
    count: int
