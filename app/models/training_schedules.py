"""Training schedules: a run body fired on Temporal at an interval or cron times."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field as DBField
from sqlmodel import SQLModel

from app.core.durations import format_duration, parse_duration
from app.models.base import Input, utcnow
from app.models.runs import TrainingRunCreate

OverlapPolicy = Literal["skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other", "allow_all"]
"""Temporal's ScheduleOverlapPolicy, by name: what a schedule does when its previous run is
still going."""

MIN_INTERVAL = timedelta(seconds=1)
"""Temporal refuses shorter intervals ("interval is too small")."""
MAX_DURATION = timedelta(days=3660)


class TrainingScheduleCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    every: str | None = Field(
        None,
        description="Start a run at this interval: whole numbers with units d, h, m, s "
        "(`30s`, `5m`, `1h30m`, `1d`). Give exactly one of `every` and `cron`.",
        max_length=50,
    )
    cron: str | None = Field(
        None,
        description="Start a run at the times of this 5-field cron expression (UTC), e.g. `0 3 * * *`, "
        "or a macro such as `@daily`.",
        max_length=200,
    )
    jitter: str | None = Field(
        None, max_length=50, description="Delay each start by a random duration up to this (`30s`)."
    )
    paused: bool = Field(False, description="Create it paused; POST .../unpause starts it.")
    overlap: OverlapPolicy = Field(
        "skip", description="When the previous run is still going: skip (default), buffer_one, ..."
    )
    run: TrainingRunCreate = Field(
        description="The body of POST /training-runs each fired run is started with."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "nightly-steady",
                    "cron": "0 3 * * *",
                    "run": {"workload": {"name": "steady", "nodes": 16}, "max_rounds": 3},
                }
            ]
        },
    )

    @field_validator("every")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is None:
            return None
        every = parse_duration(value)
        if not MIN_INTERVAL <= every <= MAX_DURATION:
            raise ValueError(f"{value!r}: the interval must be between 1s and {MAX_DURATION.days}d")
        return format_duration(every)

    @field_validator("jitter")
    @classmethod
    def _jitter(cls, value: str | None) -> str | None:
        if value is None:
            return None
        jitter = parse_duration(value)
        if jitter > MAX_DURATION:
            raise ValueError(f"{value!r}: jitter must be at most {MAX_DURATION.days}d")
        return format_duration(jitter)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(value.split())
        if not (value.startswith("@") or len(value.split()) == 5) or not croniter.is_valid(value):
            raise ValueError(
                f"{value!r} is not a cron expression: give 5 fields (minute hour day-of-month month "
                "day-of-week), e.g. '0 3 * * *', or a macro such as '@daily'"
            )
        return value

    @model_validator(mode="after")
    def _one_spec(self) -> TrainingScheduleCreate:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of `every` (an interval such as '30s') and `cron`")
        return self


class TrainingSchedule(SQLModel, table=True):
    """What the app needs to index the runs a schedule fires and to show its definition;
    its state (paused, next and recent actions) lives on Temporal only."""

    __tablename__ = "training_schedules"
    __table_args__ = (Index("ix_training_schedules_created_at", "created_at"),)

    id: str = DBField(primary_key=True, max_length=64)
    name: str = DBField(max_length=200)
    temporal_id: str = DBField(max_length=200, unique=True)
    every_s: int | None = None
    cron: str | None = DBField(default=None, max_length=200)
    jitter_s: int | None = None
    overlap: str = DBField(default="skip", max_length=32)
    run: dict[str, Any] = DBField(sa_column=Column(JSON, nullable=False))
    created_at: datetime = DBField(default_factory=utcnow)


class ScheduledRunPublic(BaseModel):
    run_id: str
    workflow_id: str
    scheduled_at: datetime | None = Field(None, description="The nominal time, jitter included.")
    started_at: datetime | None = None


class TrainingScheduleState(BaseModel):
    """Read from Temporal (describe) on every GET: Temporal is the source of truth."""

    paused: bool
    note: str | None = None
    next_action_times: list[datetime] = Field(description="The next (up to 10) times a run is due.")
    recent_actions: list[ScheduledRunPublic] = Field(
        description="The last (up to 10) runs started, oldest first."
    )
    running: list[ScheduledRunPublic] = Field(description="Runs this schedule started that are still going.")
    actions: int = Field(description="Runs started so far.")
    skipped_overlap: int = Field(description="Starts skipped because a previous run was still going.")


class TrainingSchedulePublic(BaseModel):
    id: str
    name: str
    temporal_schedule_id: str
    every: str | None
    cron: str | None
    jitter: str | None
    overlap: OverlapPolicy
    run: dict[str, Any] = Field(description="The POST /training-runs body of every fired run.")
    created_at: datetime
    state: TrainingScheduleState | None = Field(
        description="Temporal's view; null when Temporal could not be asked just now (`stale`)."
    )
    stale: bool = False


class TrainingSchedulesPublic(BaseModel):
    data: list[TrainingSchedulePublic]
    count: int


class ScheduleNoteBody(Input):
    note: str | None = Field(None, max_length=500, description="Shown as the schedule's note.")


class ScheduleTriggerBody(Input):
    overlap: OverlapPolicy = Field(
        "allow_all",
        description="allow_all (default) starts a run even while another is going; pass the "
        "schedule's own policy (e.g. skip) to respect it.",
    )


class ScheduleTriggered(BaseModel):
    id: str
    status: Literal["triggered"] = "triggered"
    overlap: OverlapPolicy
