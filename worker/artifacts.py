"""Where checkpoints live: a local directory by default, or any pyarrow filesystem URI.

RLlib reads and writes checkpoints on local disk, so training always writes under a local
directory and `store_checkpoint` publishes the finished checkpoint to the artifact store
when that store is not local (`s3://...`, `gs://...`, `file://...`). Readers call
`ensure_local`, which downloads a remote checkpoint once into a cache under the data dir.
Relative locations are relative to the worker's checkpoint root, so a workflow (which
must not read the worker's environment) can name a run's folder without knowing it.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

from worker.settings import WorkerSettings

_download_lock = threading.Lock()


def is_remote(location: str) -> bool:
    """True for URIs (`scheme://...`), which go through pyarrow.fs; plain paths are local."""
    return "://" in location


def local_root(settings: WorkerSettings) -> Path:
    """Local checkpoint root: the artifact store itself when it is a path, else a staging dir."""
    if settings.artifact_store and not is_remote(settings.artifact_store):
        return Path(settings.artifact_store).resolve()
    return (settings.data_dir / "checkpoints").resolve()


def resolve_output(settings: WorkerSettings, location: str) -> tuple[Path, str]:
    """(local dir to write, final location) for an output location.

    A relative location goes under the artifact store; an absolute path is used as is;
    a URI is written to a staging dir under the data dir and uploaded by `publish`.
    """
    if is_remote(location):
        return _staging_dir(settings, location), location.rstrip("/")
    path = Path(location)
    if path.is_absolute():
        return path, str(path)
    store = settings.artifact_store
    if store and is_remote(store):
        return local_root(settings) / path, f"{store.rstrip('/')}/{path.as_posix()}"
    return local_root(settings) / path, str(local_root(settings) / path)


def publish(local_dir: Path, location: str) -> str:
    """Copy a finished checkpoint dir to `location` (a URI); returns the location."""
    if not is_remote(location):
        return location
    import pyarrow.fs as pafs

    filesystem, path = pafs.FileSystem.from_uri(location)
    filesystem.create_dir(path, recursive=True)
    pafs.copy_files(
        str(local_dir), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=filesystem
    )
    return location


def ensure_local(settings: WorkerSettings, location: str) -> Path:
    """A local directory holding the checkpoint at `location` (downloaded once if remote).

    Raises FileNotFoundError naming the location when there is nothing there.
    """
    if not is_remote(location):
        path = Path(location)
        if not path.is_absolute():
            path = local_root(settings) / path
        if not path.exists():
            raise FileNotFoundError(f"checkpoint {location!r} does not exist (looked in {path})")
        return path
    target = _cache_dir(settings, location)
    with _download_lock:
        if target.exists():
            return target
        import pyarrow.fs as pafs

        filesystem, path = pafs.FileSystem.from_uri(location)
        if filesystem.get_file_info(path).type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"checkpoint {location!r} does not exist")
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        pafs.copy_files(
            path, str(partial), source_filesystem=filesystem, destination_filesystem=pafs.LocalFileSystem()
        )
        partial.rename(target)
    return target


def _digest(location: str) -> str:
    return hashlib.sha256(location.encode()).hexdigest()[:16]


def _staging_dir(settings: WorkerSettings, location: str) -> Path:
    return (settings.data_dir / "staging" / _digest(location)).resolve()


def _cache_dir(settings: WorkerSettings, location: str) -> Path:
    return (settings.data_dir / "checkpoint-cache" / _digest(location)).resolve()
