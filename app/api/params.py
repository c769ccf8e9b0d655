"""Path and query parameters that carry ids and names, typed once so every route checks
them the same way: an id is plain characters (contracts.SAFE_ID_PATTERN) and a workload
class follows contracts.policy_class_problem, so nothing a client sends as an id can
become a path or a URI. A malformed one is a 422 before any lookup."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator

from app.models.clusters import CLUSTER_NAME_PATTERN
from worker.contracts import MAX_ID_LENGTH, POLICY_CLASS_PATTERN, SAFE_ID_PATTERN, policy_class_problem


def _policy_class(name: str) -> str:
    if (problem := policy_class_problem(name)) is not None:
        raise ValueError(problem)
    return name


def _id_path(what: str) -> object:
    return Path(pattern=SAFE_ID_PATTERN, min_length=1, max_length=MAX_ID_LENGTH, description=what)


RunIdPath = Annotated[str, _id_path("A training run's id (GET /training-runs).")]
CheckpointIdPath = Annotated[str, _id_path("A checkpoint's id (GET /checkpoints).")]
PlanIdPath = Annotated[str, _id_path("A plan's id, as POST /schedule answered it.")]
TrainingScheduleIdPath = Annotated[str, _id_path("A training schedule's id (GET /training-schedules).")]
SearchDeploymentIdPath = Annotated[str, _id_path("A search deployment's id, as PUT /policy answered it.")]
RunIdQuery = Annotated[
    str | None,
    Query(pattern=SAFE_ID_PATTERN, min_length=1, max_length=MAX_ID_LENGTH, description="Only this run's."),
]
TrainingScheduleIdQuery = Annotated[
    str | None,
    Query(
        pattern=SAFE_ID_PATTERN,
        min_length=1,
        max_length=64,
        description="Only runs this training schedule started.",
    ),
]
PolicyClassPath = Annotated[
    str,
    Path(pattern=POLICY_CLASS_PATTERN, description="`default` or a workload name."),
    AfterValidator(_policy_class),
]
ClusterNamePath = Annotated[
    str, Path(pattern=CLUSTER_NAME_PATTERN, description="A registered cluster's name (GET /clusters).")
]
