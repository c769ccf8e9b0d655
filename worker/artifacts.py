"""Where checkpoints live: a local directory by default, or any pyarrow/fsspec URI.

RLlib reads and writes checkpoints on local disk, so training always writes under a local
directory and `publish` copies a finished checkpoint to the artifact store when that
store is not local (`s3://...`, `gs://...`, `file://...`). Readers call `ensure_local`,
which downloads a remote checkpoint into a bounded cache under the data dir.
Relative locations are relative to the worker's checkpoint root, so a workflow (which
must not read the worker's environment) can name a run's folder without knowing it.

The cache is keyed by the URI *and* a signature of the files behind it (path, size and
modification time of each object, from one listing), so an object replaced at the same
URI lands in a new cache directory, and the inference module cache, keyed by that
directory, loads it anew. A listing per plan would cost a round trip to the store on
the hot path, so a signature is trusted for `artifact_revalidate_s` seconds; when the
store cannot be reached, the last copy seen is used (with a warning) rather than
failing a plan.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from worker.contracts import ArtifactStoreOptions, is_store_uri
from worker.settings import WorkerSettings
from worker.storage import open_artifact_store

logger = logging.getLogger(__name__)

SUMMARY_FILE = "rlsched-round.json"
"""A round's summary, written next to its checkpoint by store_checkpoint; not part of the
policy, so it is left out of the signature (writing it does not invalidate caches)."""
IN_USE_S = 60.0
"""Cache entries used this recently are never evicted: a reader may still be loading them."""

_lock = threading.Lock()
_known: dict[str, tuple[Path, float]] = {}
"""URI -> (cache dir, monotonic time its signature was checked)."""


def store_options(settings: WorkerSettings, location: str) -> ArtifactStoreOptions:
    return ArtifactStoreOptions(
        uri=location, s3_endpoint_url=settings.s3_endpoint_url, s3_region=settings.s3_region
    )


def filesystem(settings: WorkerSettings, location: str) -> tuple[Any, str]:
    """(pyarrow FileSystem, path) of a URI, opened with the settings' S3 options."""
    return open_artifact_store(location, store_options(settings, location))


def local_root(settings: WorkerSettings) -> Path:
    """Local checkpoint root: the artifact store itself when it is a path, else a staging dir."""
    if settings.artifact_store and not is_store_uri(settings.artifact_store):
        return Path(settings.artifact_store).resolve()
    return (settings.data_dir / "checkpoints").resolve()


def resolve_output(settings: WorkerSettings, location: str) -> tuple[Path, str]:
    """(local dir to write, final location) for an output location.

    A relative location goes under the artifact store; an absolute path is used as is;
    a URI is written to a staging dir under the data dir and uploaded by `publish`.
    """
    if is_store_uri(location):
        return _staging_dir(settings, location), location.rstrip("/")
    path = Path(location)
    if path.is_absolute():
        return path, str(path)
    store = settings.artifact_store
    if store and is_store_uri(store):
        return local_root(settings) / path, f"{store.rstrip('/')}/{path.as_posix()}"
    return local_root(settings) / path, str(local_root(settings) / path)


def publish(settings: WorkerSettings, local_dir: Path, location: str) -> str:
    """Copy a finished checkpoint dir to `location` (a URI) and return it. The local copy
    becomes the cache entry of that URI (hard links), so evaluating or resuming from it
    on this machine downloads nothing."""
    if not is_store_uri(location):
        return location
    import pyarrow.fs as pafs

    filesystem_, path = filesystem(settings, location)
    filesystem_.create_dir(path, recursive=True)
    pafs.copy_files(
        str(local_dir),
        path,
        source_filesystem=pafs.LocalFileSystem(),
        destination_filesystem=filesystem_,
        use_threads=True,
    )
    try:
        target = _cache_dir(settings, location, _signature(filesystem_, path, location))
        if not target.exists():
            _fill(target, lambda partial: shutil.copytree(local_dir, partial, copy_function=_link))
        _remember(location, target)
        evict(settings, keep=target)
    except OSError as error:  # the upload is what matters; a reader will download instead
        logger.warning("could not cache the published checkpoint %s locally: %s", location, error)
    return location


def write_text(settings: WorkerSettings, location: str, text: str) -> None:
    """Write a small text object (a round's summary) at `location` (a URI)."""
    filesystem_, path = filesystem(settings, location)
    with filesystem_.open_output_stream(path) as out:
        out.write(text.encode())


def delete_siblings(settings: WorkerSettings, location: str, prefix: str = "iter-") -> list[str]:
    """Delete the directories named `prefix*` next to `location` (a URI), except itself:
    a round's intermediate checkpoints once its last one is in the store, including
    those an earlier attempt of the round uploaded. Returns the paths deleted."""
    import pyarrow.fs as pafs

    filesystem_, path = filesystem(settings, location)
    parent, name = path.rsplit("/", 1)
    deleted = []
    for info in filesystem_.get_file_info(pafs.FileSelector(parent, allow_not_found=True)):
        sibling = info.base_name.startswith(prefix) and info.base_name != name
        if sibling and info.type == pafs.FileType.Directory:
            filesystem_.delete_dir(info.path)
            deleted.append(info.path)
    return deleted


def ensure_local(settings: WorkerSettings, location: str) -> Path:
    """A local directory holding the checkpoint at `location` (downloaded if remote and
    not cached, or if the object at that URI changed since it was cached).

    Raises FileNotFoundError naming the location when there is nothing there, OSError
    when the store cannot be read and no earlier copy exists.
    """
    if not is_store_uri(location):
        path = Path(location)
        if not path.is_absolute():
            path = local_root(settings) / path
        if not path.exists():
            raise FileNotFoundError(f"checkpoint {location!r} does not exist (looked in {path})")
        return path
    location = location.rstrip("/")
    known = _known.get(location)
    fresh = known is not None and time.monotonic() - known[1] < settings.artifact_revalidate_s
    if known is not None and fresh and known[0].exists():
        _touch(known[0])
        return known[0]
    try:
        filesystem_, path = filesystem(settings, location)
        target = _cache_dir(settings, location, _signature(filesystem_, path, location))
    except FileNotFoundError:
        raise
    except OSError as error:
        if known is not None and known[0].exists():
            logger.warning("artifact store unreachable (%s); using the cached copy of %s", error, location)
            _touch(known[0])
            return known[0]
        raise
    with _lock:
        if not target.exists():
            import pyarrow.fs as pafs

            def download(partial: Path) -> None:
                partial.mkdir()
                pafs.copy_files(
                    path,
                    str(partial),
                    source_filesystem=filesystem_,
                    destination_filesystem=pafs.LocalFileSystem(),
                    use_threads=True,
                )

            _fill(target, download)
            logger.info("downloaded checkpoint %s to %s", location, target)
        _remember(location, target)
    evict(settings, keep=target)
    return target


def evict(settings: WorkerSettings, keep: Path | None = None) -> list[Path]:
    """Remove least recently used cache entries until the cache fits
    `checkpoint_cache_bytes`; never `keep` nor an entry used in the last IN_USE_S.
    Returns what was removed."""
    root = _cache_root(settings)
    if not root.is_dir():
        return []
    entries = []
    for entry in root.iterdir():
        if entry.is_dir() and not entry.name.endswith(".partial"):
            try:
                entries.append((entry.stat().st_mtime, _size(entry), entry))
            except FileNotFoundError:  # evicted by another process meanwhile
                continue
    total = sum(size for _, size, _ in entries)
    removed: list[Path] = []
    now = time.time()
    for used, size, entry in sorted(entries):
        if total <= settings.checkpoint_cache_bytes:
            break
        if entry == keep or now - used < IN_USE_S:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        total -= size
        removed.append(entry)
    return removed


def _signature(filesystem_: Any, path: str, location: str) -> str:
    """Digest of (relative path, size, mtime) of every object under `path`: changes when
    an object at the same URI is replaced."""
    import pyarrow.fs as pafs

    infos = filesystem_.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    files = sorted(
        (info.path[len(path) :], info.size, info.mtime_ns or 0)
        for info in infos
        if info.type == pafs.FileType.File and info.base_name != SUMMARY_FILE
    )
    if not files:
        raise FileNotFoundError(f"checkpoint {location!r} does not exist")
    return hashlib.sha256(repr(files).encode()).hexdigest()[:12]


def _fill(target: Path, write: Any) -> None:
    """Write a cache entry under a private name and rename it into place, so no reader
    (thread or process) ever sees a half-written one."""
    partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        write(partial)
        partial.rename(target)
    except OSError:
        if not target.exists():
            raise
        # another process filled the same entry first: theirs is as good as ours
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _link(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(source, destination)


def _remember(location: str, target: Path) -> None:
    _known[location] = (target, time.monotonic())
    _touch(target)


def _touch(path: Path) -> None:
    """Mark a cache entry as just used (its directory's mtime orders eviction)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _digest(location: str) -> str:
    return hashlib.sha256(location.encode()).hexdigest()[:16]


def _staging_dir(settings: WorkerSettings, location: str) -> Path:
    return (settings.data_dir / "staging" / _digest(location)).resolve()


def _cache_root(settings: WorkerSettings) -> Path:
    return (settings.data_dir / "checkpoint-cache").resolve()


def _cache_dir(settings: WorkerSettings, location: str, signature: str) -> Path:
    return _cache_root(settings) / f"{_digest(location)}-{signature}"
