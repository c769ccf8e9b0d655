"""Artifact store paths: local by default, any pyarrow URI (here file://) published on
store and downloaded once for reading."""

from __future__ import annotations

import os
import time
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


def test_an_object_replaced_at_the_same_uri_gets_a_new_cache_entry(tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    store = f"file://{bucket}"
    settings = WorkerSettings(data_dir=tmp_path / "data", artifact_store=store, artifact_revalidate_s=0)
    (bucket / "ckpt").mkdir(parents=True)
    (bucket / "ckpt" / "weights.bin").write_bytes(b"old")
    first = artifacts.ensure_local(settings, f"file://{bucket}/ckpt")
    (bucket / "ckpt" / "weights.bin").write_bytes(b"newer")
    second = artifacts.ensure_local(settings, f"file://{bucket}/ckpt")
    assert second != first and (second / "weights.bin").read_bytes() == b"newer"
    (bucket / "ckpt" / artifacts.SUMMARY_FILE).write_text("{}")  # a round's summary is not the policy
    assert artifacts.ensure_local(settings, f"file://{bucket}/ckpt") == second

    trusting = settings.model_copy(update={"artifact_revalidate_s": 3600})
    (bucket / "ckpt" / "weights.bin").write_bytes(b"newest!")
    assert artifacts.ensure_local(trusting, f"file://{bucket}/ckpt") == second  # within the window


def test_the_cache_stays_within_its_bound_least_recently_used_first(tmp_path: Path) -> None:
    settings = WorkerSettings(data_dir=tmp_path, checkpoint_cache_bytes=2_500)
    root = tmp_path / "checkpoint-cache"
    entries = []
    for age, name in ((3_000, "oldest"), (2_000, "older"), (1_000, "old"), (0, "in-use")):
        entry = root / name
        entry.mkdir(parents=True)
        (entry / "weights.bin").write_bytes(b"x" * 1_000)
        stamp = time.time() - age
        os.utime(entry, (stamp, stamp))
        entries.append(entry)
    removed = artifacts.evict(settings, keep=entries[1])
    assert removed == [entries[0], entries[2]]  # "older" is kept (just fetched), "in-use" is recent
    assert sorted(p.name for p in root.iterdir()) == ["in-use", "older"]
