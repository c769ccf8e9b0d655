"""/readyz checks a remote artifact store the way the worker opens it (pyarrow, the same
RLSCHED_ARTIFACT_STORE and S3 settings), against moto's S3 server: a working store is
ready, wrong credentials, a missing bucket or an endpoint that doesn't answer are named."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.moto_s3 import S3Server, free_port

from app.core.config import Settings
from app.main import create_app


def store_check(temporal_address: str, tmp_path: Path, store: str, endpoint: str) -> dict:
    settings = Settings(
        data_dir=tmp_path,
        temporal_address=temporal_address,
        task_queue_prefix=f"store-{uuid.uuid4().hex[:6]}-",
        reconcile_interval_s=0,
        temporal_rpc_timeout_s=0.5,
        artifact_store=store,
        s3_endpoint_url=endpoint,
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503  # no worker polls these queues; the store is one check of several
    return response.json()["checks"]["artifact_store"]


@pytest.mark.integration
def test_readiness_checks_the_artifact_store(
    temporal_address: str, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.new_bucket()
    for name, value in s3_server.env(f"s3://{bucket}/runs").items():
        monkeypatch.setenv(name, value)
    ok = store_check(temporal_address, tmp_path / "ok", f"s3://{bucket}/runs", s3_server.endpoint)
    assert ok == {"ok": True, "detail": f"s3://{bucket}/runs readable"}

    missing = store_check(temporal_address, tmp_path / "miss", "s3://no-such-bucket/runs", s3_server.endpoint)
    assert not missing["ok"] and "bucket 'no-such-bucket' does not exist" in missing["detail"]

    started = time.monotonic()
    nowhere = f"http://127.0.0.1:{free_port()}"
    unreachable = store_check(temporal_address, tmp_path / "nowhere", f"s3://{bucket}/runs", nowhere)
    assert not unreachable["ok"] and "endpoint unreachable" in unreachable["detail"]
    assert time.monotonic() - started < 60

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    rejected = store_check(temporal_address, tmp_path / "rejected", f"s3://{bucket}/runs", s3_server.endpoint)
    assert not rejected["ok"] and "credentials rejected" in rejected["detail"]
