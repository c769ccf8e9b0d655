"""A plan request file (the body POST /schedule takes) as the plan activity's input, for
`rlsched plan`: the same contracts check it, so a file the API would refuse is refused
here with the same field named.

Locally there is no index and nothing deployed: `best` has no meaning, and a checkpoint
id (a policy, or a search's base) stands for the checkpoint directory given beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from worker.contracts import (
    SEARCH_PREFIX,
    PlanInput,
    PolicyRef,
    heuristic_problem,
    id_problem,
    plan_input_problem,
    search_needs_no_checkpoint,
    search_problem,
)

IGNORED = ("class", "async")
"""Body fields of POST /schedule that mean nothing to a local plan (a class matters only
for `best`; a local plan is always synchronous)."""


class PlanFileError(ValueError):
    """What is wrong with the request, naming the field (`nodes.0.cpus: ...`)."""


def read_body(path: Path) -> dict[str, Any]:
    import json

    try:
        body = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise PlanFileError(f"cannot read {path}: {error}") from error
    except json.JSONDecodeError as error:
        raise PlanFileError(f"{path} is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise PlanFileError(f"{path}: a plan request is a JSON object (nodes, jobs, policy, ...)")
    return body


def plan_input(body: dict[str, Any], checkpoint: Path | None = None) -> PlanInput:
    """The plan activity's input for a POST /schedule body; PlanFileError names what is wrong."""
    fields = {k: v for k, v in body.items() if k not in IGNORED}
    name = fields.pop("policy", "best")
    if not isinstance(name, str):
        raise PlanFileError(f"policy: a policy is named by a string, not {name!r}")
    if fields.get("window") is None:  # the API's null: a checkpoint's training window, else 32
        fields.pop("window", None)
    try:
        request = PlanInput(policy=policy_ref(name, checkpoint), **fields)
    except ValidationError as error:
        raise PlanFileError(_first_error(error)) from error
    if (problem := plan_input_problem(request)) is not None:
        raise PlanFileError(problem)
    return request


def policy_ref(name: str, checkpoint: Path | None) -> PolicyRef:
    """A heuristic, `search:<heuristic, tuned or checkpoint id>`, or a checkpoint id; a
    checkpoint id's checkpoint is `checkpoint` (there is no index to look it up in)."""
    location = str(checkpoint.resolve()) if checkpoint is not None else None
    if name == "best":
        raise PlanFileError(
            "policy: 'best' is what the service has deployed for a class; locally, name a heuristic "
            "(e.g. edf+fastest), search:<heuristic or tuned>, or a checkpoint id with --checkpoint"
        )
    if name.startswith(SEARCH_PREFIX):
        if (problem := search_problem(name)) is not None:
            raise PlanFileError(f"policy: {problem}")
        if search_needs_no_checkpoint(name):
            return PolicyRef(kind="search", name=name)
        return PolicyRef(kind="search", name=name, checkpoint=_needed(name, location))
    if heuristic_problem(name) is None:
        return PolicyRef(kind="heuristic", name=name)
    if id_problem(name) is None:
        return PolicyRef(kind="checkpoint", name=name, checkpoint=_needed(name, location))
    raise PlanFileError(f"policy: {heuristic_problem(name, 'policy')}")


def _needed(name: str, location: str | None) -> str:
    if location is None:
        raise PlanFileError(
            f"policy: {name!r} is not a heuristic or `tuned`, so it names a checkpoint: give its "
            "directory with --checkpoint"
        )
    return location


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
