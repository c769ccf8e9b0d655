"""Ids, names, locations and numbers from clients, checked at the boundary.

Ids and names from clients never reach a path or a URI: they are looked up (in the app's
index, in the deployed classes), and the locations they map to are the worker's own.
These rules hold at the boundary (the API's request models) and again in the contracts,
so a worker refuses the same input whoever sent it.

Numbers are strict: `false` or `"8"` is not a number (a JSON int is still a float). Every
magnitude has a floor and a ceiling a plan can compute with: a node of 5e-324 CPUs or a
GPU of speed 5e-324 makes the simulator divide by zero or overflow to inf.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict

from worker.contracts.names import HEURISTIC_GRAMMAR, SEARCH_PREFIX, heuristic_problem

SWF_WORKLOAD_PREFIX = "trace:swf:"
_SWF_PATH = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


def swf_path_problem(path: str) -> str | None:
    """Why a client's `trace:swf:PATH` may not be opened, or None. Clients name files
    under the worker's traces directory only: no absolute paths, no `..`, plain names, so
    an id from a request never reaches an arbitrary file (the worker resolves it there)."""
    parts = path.split("/")
    if not _SWF_PATH.fullmatch(path) or any(p in ("", ".", "..") for p in parts):
        return (
            f"trace:swf:{path!r} must name a file under the traces directory by a relative path "
            "of plain names (letters, digits, '_', '-', '.'; no absolute path, no '..'), "
            "e.g. trace:swf:swf/lublin_256.swf"
        )
    return None


LABEL_PATTERN = r"^[^\x00-\x1f\x7f]*$"
"""Free text a client names things with (node and job ids, run names, stop reasons):
anything printable. Control bytes are refused: PostgreSQL text cannot hold NUL, and logs
should not carry them."""

SAFE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.?$"
"""An id a client may send (run, checkpoint, schedule request), at most MAX_ID_LENGTH
long: letters, digits, `_`, `-` and single dots, so no `..`, `/`, `\\`, NUL or `:`
(hence no URI scheme). A pattern without look-ahead, so OpenAPI clients can use it."""
MAX_ID_LENGTH = 200
_SAFE_ID = re.compile(SAFE_ID_PATTERN)
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def id_problem(value: str, what: str = "id") -> str | None:
    """Why `value` may not be used as an id, or None."""
    if len(value) <= MAX_ID_LENGTH and _SAFE_ID.fullmatch(value):
        return None
    return (
        f"{what} {value[:100]!r} is not a valid id: 1-200 letters, digits, '_', '-' or '.', "
        "starting with a letter or digit; no '..', '/', '\\', NUL or URI scheme"
    )


_NAME_PREFIXES = ("easy", "strict", "trace")
"""The only `word:` prefixes a policy or workload name has; any other reads as a URI scheme."""


def path_like_problem(name: str, role: str = "policy") -> str | None:
    """Why `name` looks like a path or a URI (`..`, `/`, `\\`, a control byte, `scheme:`),
    or None. Such a name is refused outright wherever a policy is named, whatever else
    it could be; other unknown names get their own answer (an unknown checkpoint...)."""
    scheme = _URI_SCHEME.match(name)
    if (
        any(c in name for c in "/\\")
        or ".." in name
        or _CONTROL.search(name)
        or (scheme is not None and scheme.group(0)[:-1] not in _NAME_PREFIXES)
    ):
        return (
            f"{role} {name[:100]!r} looks like a path or a URI: a policy is a heuristic "
            f"({HEURISTIC_GRAMMAR}) or a checkpoint id (letters, digits, '_', '-', '.'), never a location"
        )
    return None


def policy_name_problem(name: str, role: str = "policy") -> str | None:
    """Why `name` is neither a heuristic nor a possible checkpoint id, or None (whether
    such a checkpoint exists is the index's question). A name with `+` or `:` that is not
    path-like was meant as a composed heuristic, so it gets the heuristic's message."""
    if heuristic_problem(name) is None or id_problem(name) is None:
        return None
    if (problem := path_like_problem(name, role)) is not None:
        return problem
    if "+" in name or ":" in name:
        return heuristic_problem(name, role)
    return id_problem(name, f"{role} (a checkpoint id)")


def search_problem(name: str, role: str = "policy") -> str | None:
    """Why `name` is not a `search:<base>` a plan can use (the base a heuristic, `tuned` or
    a possible checkpoint id), or None."""
    if not name.startswith(SEARCH_PREFIX):
        return f"{role} {name[:100]!r} is not a search (search:<heuristic, tuned or checkpoint id>)"
    return policy_name_problem(name.removeprefix(SEARCH_PREFIX), f"{role}: search base")


POLICY_CLASS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,199}$"
"""A workload class: `default` or a workload name such as `steady` or `trace:alibaba-default:train`."""
_POLICY_CLASS = re.compile(POLICY_CLASS_PATTERN)


def policy_class_problem(name: str) -> str | None:
    """Why `name` is not a workload class, or None. A class is a key, never a path; `/` is
    allowed only inside a `trace:swf:PATH` class, whose path follows the SWF rule."""
    if not _POLICY_CLASS.fullmatch(name):
        return f"workload class {name[:100]!r} must match {POLICY_CLASS_PATTERN}"
    if name.startswith(SWF_WORKLOAD_PREFIX):
        return swf_path_problem(name[len(SWF_WORKLOAD_PREFIX) :])
    if ":" in name and not name.startswith("trace:"):
        return f"workload class {name[:100]!r}: only trace workloads (trace:NAME) have a ':' in their name"
    if "/" in name or ".." in name:
        return (
            f"workload class {name[:100]!r} may not contain '/' or '..' "
            "(only a trace:swf:PATH class names a path)"
        )
    return None


def location_problem(location: str, what: str = "location") -> str | None:
    """Why a storage location (a checkpoint, an output dir) may not be used, or None.
    Locations are the worker's own (relative to its artifact store, absolute paths it
    wrote, or the store's URIs); none ever needs `..`, a backslash or a control byte."""
    if not location or len(location) > 2000:
        return f"{what} must be 1-2000 characters"
    if _CONTROL.search(location) or "\\" in location:
        return f"{what} {location[:100]!r} contains a control character or a backslash"
    path = location.split("://", 1)[1] if "://" in location else location
    if ".." in path.split("/"):
        return f"{what} {location[:100]!r} may not contain '..'"
    if "://" not in location and _URI_SCHEME.match(location) and not re.match(r"^[A-Za-z]:/", location):
        return f"{what} {location[:100]!r}: a URI needs scheme://"
    return None


def checked(problem: str | None, value: str) -> str:
    if problem is not None:
        raise ValueError(problem)
    return value


StrictNum = Annotated[float, Strict()]
StrictCount = Annotated[int, Strict()]
StrictFlag = Annotated[bool, Strict()]

MIN_CPUS = 0.001
"""A millicore, the smallest CPU request Kubernetes knows."""
MAX_CPUS = 100_000
MAX_MEMORY_GB = 1e7
MIN_GPUS = 0.001
"""The smallest fractional GPU share a job may ask for (0 = no GPU)."""
MAX_GPUS = 1024
MIN_GPU_SPEED = 0.01
MAX_GPU_SPEED = 100
MIN_SECONDS = 0.001
MAX_RUNTIME_S = 1e8
MAX_TIME_S = 1e9
MAX_GPU_TYPES = 16
"""Distinct GPU types in one plan (and per node or job); each is a column of the
simulator's arrays, so the count is bounded like nodes and jobs are."""
GPU_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
GpuType = Annotated[str, Field(pattern=GPU_TYPE_PATTERN)]
Seed = Annotated[int, Strict(), Field(ge=0, le=2**31 - 1)]

MAX_NODES = 2_000
MAX_JOBS = 10_000


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
