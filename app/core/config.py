"""The API's settings: environment variables with the one prefix RLSCHED_ shared with the
worker (worker/settings.py), so a single `.env` or compose `environment:` block configures
both processes. `DATABASE_URL` is also read unprefixed because every PaaS sets it so."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.contracts import (
    INFERENCE_TASK_QUEUE,
    TRAINING_TASK_QUEUE,
    ArtifactStoreOptions,
    heuristic_problem,
    is_store_uri,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RLSCHED_", extra="ignore", populate_by_name=True)

    data_dir: Path = Path("./data")
    """The app's SQLite file, Temporal's dev database and (worker side) checkpoints."""
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("RLSCHED_DATABASE_URL", "DATABASE_URL")
    )
    """SQLAlchemy URL; default a SQLite file under data_dir. postgres:// URLs get the
    psycopg (v3) driver."""
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_workers: int = Field(1, ge=1, le=64)
    api_key: SecretStr | None = None
    """When set, every endpoint except health, readiness and metrics wants
    `Authorization: Bearer <key>`. Off by default for local use."""
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = Field(8233, ge=1, le=65535)
    task_queue_prefix: str = ""
    """Prefix of both task queues, as the worker's RLSCHED_TASK_QUEUE_PREFIX: empty in
    production; tests and side-by-side deployments use it to keep their queues apart."""
    temporal_connect_timeout_s: float = Field(5.0, gt=0)
    schedule_mode: Literal["workflow", "service"] = "service"
    """How a synchronous POST /schedule reaches the worker. `service` (default): an update
    to a long-lived SchedulerServiceWorkflow (started on first use); measured faster at 1
    client and higher throughput at 8 than `workflow`: a SchedulerWorkflow per request,
    which stays the path of `"async": true` requests and the fallback for a worker that
    does not serve the service workflow."""
    schedule_service_instances: int = Field(1, ge=1, le=64)
    """`service` mode: how many service workflows the plans are spread over (round robin).
    One workflow runs one workflow task at a time, so concurrent plans queue behind it;
    on 2 cores 4 instances measured the same as 1 (the plans' CPU is the limit)."""
    schedule_timeout_s: float = Field(10.0, ge=0.01, le=600)
    """How long POST /schedule waits for the plan before answering 504 with the ids."""
    temporal_rpc_timeout_s: float = Field(5.0, gt=0)
    """Bound on queries, describe() and stop updates, so a missing worker costs a request
    seconds, not forever."""
    reconcile_interval_s: float = Field(2.0, ge=0)
    """How often the background reconciler refreshes live runs; 0 disables it."""
    migrate_on_start: bool = True
    rediscover_on_start: bool = True
    """Before the reconciler's first pass, add to the index any run Temporal still has
    and any round whose checkpoint summary is in the artifact store (a lost or restored
    database catches up); rows already indexed are left alone."""
    fallback_heuristic: str = "sjf+fastest"
    """What `policy: "best"` serves for a class with nothing deployed (said so in the answer).
    sjf on the fastest GPU that fits is within 0.002 of the best heuristic on every
    workload of the README's league table; plain edf is 3-10 points below it."""
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    artifact_store: str | None = None
    """The worker's checkpoint store (RLSCHED_ARTIFACT_STORE): /readyz checks that a
    remote one (s3://...) answers. A local path is the worker's own disk: not checked here,
    but scanned for round summaries when the index is rebuilt (default <data_dir>/checkpoints)."""
    s3_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RLSCHED_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    )
    s3_region: str | None = Field(
        default=None, validation_alias=AliasChoices("RLSCHED_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
    )
    store_check_timeout_s: float = Field(5.0, gt=0)
    """Bound on the artifact store check of /readyz."""
    cluster_endpoints: str = ""
    """Where POST /clusters may point the worker's Slurm clients: comma-separated absolute
    paths, each a slurm.conf allowed as is or a directory whose slurm.conf files (at any
    depth) are allowed. Empty (default): no cluster can be registered. A request names a
    file; only the operator decides which files the worker reads."""
    cluster_probe_timeout_s: float = Field(5.0, ge=0.5, le=60)
    """Bound on each Slurm command of a registration's reachability check."""

    @field_validator("cluster_endpoints")
    @classmethod
    def _absolute_endpoints(cls, value: str) -> str:
        for entry in _entries(value):
            if not entry.startswith("/") or ".." in entry.split("/"):
                raise ValueError(f"cluster_endpoints: {entry!r} must be an absolute path without '..'")
        return value

    @property
    def allowed_cluster_endpoints(self) -> list[str]:
        return [entry.rstrip("/") or "/" for entry in _entries(self.cluster_endpoints)]

    @field_validator("fallback_heuristic")
    @classmethod
    def _known_heuristic(cls, name: str) -> str:
        if (problem := heuristic_problem(name, "fallback_heuristic")) is not None:
            raise ValueError(problem)
        return name

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url
        if not url:
            return f"sqlite:///{(self.data_dir / 'rlsched.db').resolve()}"
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def store_options(self) -> ArtifactStoreOptions | None:
        """How to reach a remote artifact store (None for a local directory or none)."""
        if not self.artifact_store or not is_store_uri(self.artifact_store):
            return None
        return ArtifactStoreOptions(
            uri=self.artifact_store,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_region=self.s3_region,
            connect_timeout_s=min(self.store_check_timeout_s, 5.0),
            request_timeout_s=self.store_check_timeout_s,
            retries=1,
        )

    @property
    def training_queue(self) -> str:
        return self.task_queue_prefix + TRAINING_TASK_QUEUE

    @property
    def inference_queue(self) -> str:
        return self.task_queue_prefix + INFERENCE_TASK_QUEUE

    @property
    def temporal_ui_url(self) -> str:
        host = self.temporal_address.rsplit(":", 1)[0] or "localhost"
        return f"http://{host}:{self.temporal_ui_port}"


def _entries(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
