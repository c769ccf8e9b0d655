"""Opening the artifact store (pyarrow, or fsspec for schemes pyarrow lacks) and checking
that it answers. The worker opens it for checkpoints (worker/artifacts.py); the app's
/readyz opens it the same way, from the same settings (worker/contracts/store.py), so a
store the app calls readable is one the worker can read. pyarrow is imported inside the
functions, never at module load, so importing this costs the app nothing.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

from worker.contracts.store import ArtifactStoreOptions

_AWS_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
_filesystems: dict[tuple[object, ...], Any] = {}
_filesystems_lock = threading.Lock()


def open_artifact_store(location: str, options: ArtifactStoreOptions) -> tuple[Any, str]:
    """(pyarrow FileSystem, path inside it) of a URI in the artifact store.

    `s3://` goes through pyarrow's own S3FileSystem (AWS SDK: credentials from the
    standard AWS_* variables, ~/.aws or an instance role; endpoint and region from the
    options); one filesystem per option set is reused, since building one looks up
    credentials. Other schemes pyarrow knows (gs, hdfs, abfs, file) go through
    `FileSystem.from_uri`; anything else through fsspec, wrapped for pyarrow.
    """
    import pyarrow.fs as pafs

    parts = urlsplit(location)
    if parts.scheme == "s3":
        credentials = tuple(os.environ.get(name) for name in _AWS_CREDENTIAL_VARIABLES)
        key = ("s3", options.s3_endpoint_url, options.s3_region, options.connect_timeout_s,
               options.request_timeout_s, options.retries, credentials)  # fmt: skip
        with _filesystems_lock:
            filesystem = _filesystems.get(key)
            if filesystem is None:
                endpoint: dict[str, str] = {}
                if options.s3_endpoint_url:
                    url = urlsplit(options.s3_endpoint_url)
                    endpoint = {"endpoint_override": url.netloc or url.path, "scheme": url.scheme or "https"}
                filesystem = _filesystems[key] = pafs.S3FileSystem(
                    region=options.s3_region,
                    connect_timeout=options.connect_timeout_s,
                    request_timeout=options.request_timeout_s,
                    retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=options.retries),
                    **endpoint,
                )
        return filesystem, f"{parts.netloc}{parts.path}".rstrip("/")
    try:
        filesystem, path = pafs.FileSystem.from_uri(location)
    except Exception:  # a scheme pyarrow doesn't know natively: ask fsspec
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
        filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(fs))
    return filesystem, path.rstrip("/")


def artifact_store_problem(options: ArtifactStoreOptions, write: bool = False) -> str | None:
    """None if the store answers (and, with `write`, takes an object), else a message
    naming the store and what to fix: wrong credentials, a missing bucket, an endpoint
    that doesn't answer. Used by the worker at start and by the app's /readyz."""
    import pyarrow.fs as pafs

    where = options.uri + (f" at {options.s3_endpoint_url}" if options.s3_endpoint_url else "")
    try:
        filesystem, path = open_artifact_store(options.uri, options)
        if urlsplit(options.uri).scheme == "s3":
            bucket = path.split("/", 1)[0]
            if filesystem.get_file_info(bucket).type == pafs.FileType.NotFound:
                return f"artifact store {where}: bucket {bucket!r} does not exist; create it first"
        filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        if write:
            probe = f"{path}/.rlsched-probe-{uuid.uuid4().hex}"
            with filesystem.open_output_stream(probe) as out:
                out.write(b"probe")
            filesystem.delete_file(probe)
    except Exception as error:  # pyarrow raises OSError / ArrowInvalid with the AWS error inside
        return f"artifact store {where}: {_store_hint(str(error))}{error}"
    return None


def _store_hint(message: str) -> str:
    if any(code in message for code in ("ACCESS_DENIED", "InvalidAccessKeyId", "SignatureDoesNotMatch")):
        return "credentials rejected (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE): "
    if "NO_SUCH_BUCKET" in message:
        return "the bucket does not exist: "
    if "NETWORK_CONNECTION" in message or "curlCode" in message:
        return "endpoint unreachable (check RLSCHED_S3_ENDPOINT_URL / AWS_ENDPOINT_URL and the network): "
    return ""
