"""Registered real clusters: the registration a client sends, the index row kept current
from the cluster's ClusterLoopWorkflow (its `status` query and describe()), and one row
per tick of its decision history, which outlives the workflow's own last
`decisions_kept` ticks and the workflow itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field as DBField
from sqlmodel import SQLModel

from app.models.base import Input, utcnow
from worker.contracts import DEFAULT_POLICY_CLASS, StrictNum
from worker.contracts.clusters import ClusterMode, ClusterProbe, ClusterSettings, TickRecord

CLUSTER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
"""1-63 letters, digits, `_` and `-`: the name is part of the loop's workflow id and URLs."""
MIN_INTERVAL_S = 1
MAX_INTERVAL_S = 86_400
ClusterStatus = Literal["running", "stopping", "stopped", "failed"]
"""`stopping`: DELETE asked Temporal to cancel the loop; `stopped`: it ended (cancelled or
terminated); `failed`: the workflow failed or timed out."""
LIVE_CLUSTER_STATUSES = ("running", "stopping")


class ClusterCreate(Input, ClusterSettings):
    name: str = Field(
        pattern=CLUSTER_NAME_PATTERN,
        description="1-63 letters, digits, '_' or '-', starting with a letter or digit; "
        "the loop's workflow id is `cluster-<name>`.",
    )
    kind: Literal["slurm"] = Field("slurm", description="The cluster manager; Slurm only for now.")
    endpoint: str = Field(
        min_length=1,
        max_length=1000,
        description="The absolute path of the slurm.conf the worker's Slurm clients use, on the "
        "worker's machine. It must be allowed by RLSCHED_CLUSTER_ENDPOINTS (the operator's list).",
    )
    policy_class: str = Field(
        DEFAULT_POLICY_CLASS,
        alias="class",
        description="Plans use the policy deployed for this workload class (PUT /policy/{class}).",
    )
    interval_s: StrictNum = Field(
        30.0, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S, description="Seconds between ticks."
    )
    mode: ClusterMode = Field(
        "advise", description="`advise`: record what a tick would do; `enforce`: apply it in Slurm."
    )
    partition: str | None = Field(
        None, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$", description="Only this partition's nodes."
    )

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "lab",
                    "kind": "slurm",
                    "endpoint": "/etc/slurm/slurm.conf",
                    "class": "default",
                    "interval_s": 30,
                    "mode": "advise",
                }
            ]
        },
    )

    @field_validator("endpoint")
    @classmethod
    def _slurm_conf(cls, endpoint: str) -> str:
        """Stricter than the loop's rule (an absolute path): a registration names the file."""
        if endpoint.endswith("/") or not endpoint.endswith(".conf"):
            raise ValueError(f"endpoint {endpoint[:100]!r} must name a slurm.conf file (ending in .conf)")
        return endpoint


class Cluster(SQLModel, table=True):
    __tablename__ = "clusters"
    __table_args__ = (Index("ix_clusters_status", "status"),)

    name: str = DBField(primary_key=True, max_length=63)
    workflow_id: str = DBField(max_length=200, unique=True)
    kind: str = DBField(default="slurm", max_length=32)
    endpoint: str = DBField(max_length=1000)
    policy_class: str = DBField(max_length=200)
    interval_s: float
    mode: str = DBField(max_length=16)
    partition: str | None = DBField(default=None, max_length=200)
    config: dict[str, Any] = DBField(sa_column=Column(JSON, nullable=False))
    """The ClusterConfig the loop runs with."""
    status: str = DBField(default="running", max_length=16)
    ticks: int = 0
    failed_ticks: int = 0
    outcomes: dict[str, int] = DBField(default_factory=dict, sa_column=Column(JSON))
    """Decisions per outcome (applied, advised, unchanged, skipped) over the indexed ticks."""
    error: str | None = DBField(default=None, max_length=4000)
    created_at: datetime = DBField(default_factory=utcnow)
    updated_at: datetime = DBField(default_factory=utcnow)
    synced_at: datetime | None = None
    stopped_at: datetime | None = None


class ClusterTick(SQLModel, table=True):
    """One tick of a cluster's decision history, as the loop recorded it."""

    __tablename__ = "cluster_ticks"

    cluster: str = DBField(foreign_key="clusters.name", primary_key=True, max_length=63)
    tick: int = DBField(primary_key=True)
    at: datetime
    record: dict[str, Any] = DBField(sa_column=Column(JSON, nullable=False))
    """The TickRecord."""


class ClusterPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str
    kind: Literal["slurm"]
    endpoint: str
    policy_class: str = Field(alias="class")
    interval_s: float
    mode: ClusterMode
    partition: str | None
    workflow_id: str
    status: ClusterStatus
    ticks: int = Field(description="Ticks so far (failed ones included).")
    failed_ticks: int
    outcomes: dict[str, int] = Field(
        description="Decisions per outcome over the recorded ticks: applied, advised, unchanged, skipped."
    )
    last_tick: TickRecord | None
    error: str | None = Field(description="Why the loop ended, when it did not end on request.")
    created_at: datetime
    stopped_at: datetime | None
    synced_at: datetime | None = Field(description="When the index last heard from the loop.")
    stale: bool = Field(False, description="True when Temporal could not be asked just now.")


class ClustersPublic(BaseModel):
    data: list[ClusterPublic]
    count: int


class ClusterRegistered(ClusterPublic):
    probe: ClusterProbe = Field(description="What the reachability check read before the loop started.")


class ClusterDecisionsPage(BaseModel):
    """Ticks newest first, each with its decisions and what became of them."""

    data: list[TickRecord]
    count: int
    next_offset: int | None


class ClusterStopping(BaseModel):
    name: str
    status: ClusterStatus
    how: Literal["cancel"] = Field(
        "cancel",
        description="The loop has no stop signal: it is cancelled on Temporal. A tick cut short "
        "leaves Slurm consistent (each decision is one `scontrol update`; leases run out by themselves).",
    )
