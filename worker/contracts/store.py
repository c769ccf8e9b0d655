"""How to reach the artifact store: the settings the app and the worker read from the
same environment. Opening it is the worker's (worker/storage.py)."""

from __future__ import annotations

from worker.contracts.ids import Model


class ArtifactStoreOptions(Model):
    """How to reach the artifact store (RLSCHED_ARTIFACT_STORE and its S3 options), read
    from the same environment by the app (for /readyz) and the worker."""

    uri: str
    """A URI (`s3://bucket/prefix`, `gs://...`, `file:///...`, any fsspec protocol)."""
    s3_endpoint_url: str | None = None
    """An S3-compatible server (MinIO, moto, ...): `http://host:port`; None = AWS."""
    s3_region: str | None = None
    connect_timeout_s: float = 5.0
    request_timeout_s: float = 60.0
    retries: int = 3
    """Attempts per request (pyarrow's AWS standard retry strategy)."""


def is_store_uri(location: str) -> bool:
    """True for URIs (`scheme://...`), which go through pyarrow.fs; plain paths are local."""
    return "://" in location
