"""Artifact store paths: local by default, any pyarrow URI (here file://) published on
store and downloaded once for reading."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker import artifacts
from worker.settings import WorkerSettings


def test_local_store_writes_in_place(tmp_path: Path) -> None:
    settings = WorkerSettings(data_dir=tmp_path)
    local, final = artifacts.resolve_output(settings, "run-1/round-0001")
    assert local == tmp_path.resolve() / "checkpoints" / "run-1" / "round-0001"
    assert final == str(local)
    absolute, final = artifacts.resolve_output(settings, str(tmp_path / "elsewhere"))
    assert absolute == tmp_path / "elsewhere" and final == str(absolute)
    with pytest.raises(FileNotFoundError, match="run-1/round-0001"):
        artifacts.ensure_local(settings, "run-1/round-0001")


def test_remote_store_publishes_and_downloads(tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    settings = WorkerSettings(data_dir=tmp_path / "data", artifact_store=f"file://{bucket}")
    local, final = artifacts.resolve_output(settings, "run-1/round-0001")
    assert final == f"file://{bucket}/run-1/round-0001"
    assert local.is_relative_to((tmp_path / "data").resolve())

    checkpoint = local / "iter-000002"
    (checkpoint / "sub").mkdir(parents=True)
    (checkpoint / "sub" / "weights.bin").write_bytes(b"\x00\x01")
    location = artifacts.publish(settings, checkpoint, f"{final}/iter-000002")
    assert (
        bucket / "run-1" / "round-0001" / "iter-000002" / "sub" / "weights.bin"
    ).read_bytes() == b"\x00\x01"

    fetched = artifacts.ensure_local(settings, location)
    assert (fetched / "sub" / "weights.bin").read_bytes() == b"\x00\x01"
    assert artifacts.ensure_local(settings, location) == fetched  # cached
    with pytest.raises(FileNotFoundError, match="missing"):
        artifacts.ensure_local(settings, f"file://{bucket}/missing")
