"""Worker-side settings, from environment variables prefixed RLSCHED_ (and RAY_ADDRESS)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RLSCHED_", extra="ignore")

    data_dir: Path = Path("./data")
    """Checkpoints, Ray's temp dir, Temporal's dev database all live under here."""
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    ray_address: str | None = Field(
        default=None, validation_alias=AliasChoices("RAY_ADDRESS", "RLSCHED_RAY_ADDRESS")
    )
    """Attach training to an existing Ray cluster instead of starting one in-process."""
    ray_num_cpus: int = 2
    artifact_store: str | None = None
    """Where checkpoints go: a local path or any pyarrow/fsspec URI (s3://...); default
    <data_dir>/checkpoints."""
    training_niceness: int = Field(10, ge=0, le=19)
    """Added to the niceness of a training-only worker (RLSCHED_WORKER_QUEUE=training) at
    start; Ray's processes inherit it. Training soaks up every core it gets, and on a small
    machine plans (inference workers, the API, Temporal) would queue behind it: at a lower
    priority it takes only what they leave. 0 = unchanged."""
    policy_cache_size: int = 8
    """Loaded RLModules kept for inference (LRU, keyed by checkpoint)."""

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
