"""Worker-side settings, from environment variables prefixed RLSCHED_ (and RAY_ADDRESS)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.contracts import ArtifactStoreOptions, is_store_uri


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RLSCHED_", extra="ignore", populate_by_name=True)

    data_dir: Path = Path("./data")
    """Checkpoints, Ray's temp dir, Temporal's dev database all live under here."""
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    ray_address: str | None = Field(
        default=None, validation_alias=AliasChoices("RAY_ADDRESS", "RLSCHED_RAY_ADDRESS")
    )
    """Attach training to an existing Ray cluster instead of starting one in-process."""
    ray_num_cpus: int = 2
    env_runners: int | None = Field(default=None, ge=0, le=1024)
    """Remote env-runner actors per training round (RLSCHED_ENV_RUNNERS). Default: none
    with the embedded Ray (sampling in the worker's own process measured fastest on 2
    cores), and one per CPU of the cluster with RAY_ADDRESS, so that sampling actually
    runs on the cluster the address names rather than in the worker."""
    artifact_store: str | None = None
    """Where checkpoints go: a local path or any pyarrow/fsspec URI (s3://...); default
    <data_dir>/checkpoints."""
    training_niceness: int = Field(10, ge=0, le=19)
    """Added to the niceness of a training-only worker (RLSCHED_WORKER_QUEUE=training) at
    start; Ray's processes inherit it. Training soaks up every core it gets, and on a small
    machine plans (inference workers, the API, Temporal) would queue behind it: at a lower
    priority it takes only what they leave. 0 = unchanged."""
    s3_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RLSCHED_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    )
    """An S3-compatible server for s3:// stores (`http://host:port`); unset = AWS.
    Credentials come from the standard AWS_* variables (or ~/.aws, an instance role)."""
    s3_region: str | None = Field(
        default=None, validation_alias=AliasChoices("RLSCHED_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
    )
    checkpoint_cache_bytes: int = Field(2 * 1024**3, ge=0)
    """Bound on <data_dir>/checkpoint-cache, the downloaded copies of store checkpoints
    (least recently used go first; entries used in the last minute are kept)."""
    artifact_revalidate_s: float = Field(10.0, ge=0)
    """How long a downloaded checkpoint is trusted before the store is listed again to
    see whether the object at its URI was replaced (0: list on every use)."""
    policy_cache_size: int = 8
    """Loaded RLModules kept for inference (LRU, keyed by checkpoint)."""
    worker_metrics_port: int | None = Field(None, ge=0, le=65535)
    """Serve the worker's own Prometheus metrics (rounds, iterations, plan latency) on
    this port (9464 in docker-compose); unset = off. 0 picks a free port (tests)."""
    worker_sdk_metrics_port: int | None = Field(None, ge=0, le=65535)
    """The Temporal SDK's runtime metrics; default worker_metrics_port + 1 when that is set."""
    worker_metrics_host: str = "0.0.0.0"

    @property
    def sdk_metrics_port(self) -> int | None:
        if self.worker_sdk_metrics_port is not None:
            return self.worker_sdk_metrics_port
        if self.worker_metrics_port:
            return self.worker_metrics_port + 1
        return None

    @property
    def store_options(self) -> ArtifactStoreOptions | None:
        """How to open the artifact store, or None when it is a local directory."""
        if not self.artifact_store or not is_store_uri(self.artifact_store):
            return None
        return ArtifactStoreOptions(
            uri=self.artifact_store, s3_endpoint_url=self.s3_endpoint_url, s3_region=self.s3_region
        )

    @property
    def checkpoint_root(self) -> str:
        return self.artifact_store or str((self.data_dir / "checkpoints").resolve())

    @property
    def ray_temp_dir(self) -> Path:
        return (self.data_dir / "ray").resolve()


def default_inference_workers() -> int:
    """Inference worker processes `rlsched dev` starts by default: one per core (plans
    are CPU-bound Python, so one process runs one plan at a time; more processes run
    them on more cores), at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


@lru_cache
def get_settings() -> WorkerSettings:
    return WorkerSettings()
