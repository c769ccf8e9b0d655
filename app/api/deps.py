"""Dependencies, typed once as Annotated aliases so routes read `session: SessionDep`.

All are `async def`: FastAPI runs plain `def` dependencies on its thread pool, and that
hop costs more than the work they do. A session connects lazily, on its first statement,
which runs on a worker thread (a plain `def` route, or run_in_threadpool); closing it
rolls back and returns its connection, so that too happens off the event loop unless
nothing is open (after a commit)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.core.config import Settings
from app.errors import ProblemError, Unprocessable
from app.services.temporal import TemporalGateway


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_db(request: Request) -> AsyncIterator[Session]:
    session = Session(request.app.state.engine, expire_on_commit=False)
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


async def get_temporal(request: Request) -> TemporalGateway:
    return request.app.state.temporal


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_db)]
TemporalDep = Annotated[TemporalGateway, Depends(get_temporal)]

_bearer = HTTPBearer(auto_error=False, description="Only when RLSCHED_API_KEY is set.")


JSON_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def require_json_body(request: Request) -> None:
    """A body in another media type is a 415, not a confusing 422 about a dict: the API
    speaks JSON only (`application/json` or a `+json` type; no Content-Type means JSON)."""
    if request.method not in JSON_BODY_METHODS:
        return
    headers = request.headers
    has_body = headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers
    media_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if has_body and not (media_type == "application/json" or media_type.endswith("+json")):
        raise ProblemError(415, f"request bodies are JSON (application/json), not {media_type or 'empty'!r}")


async def reject_unknown_query(request: Request) -> None:
    """A query parameter the route does not take is a 422 naming it, as an unknown body
    field is: a typo (`?limt=5`) must not be silently ignored."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None or not request.query_params:
        return
    known: set[str] = set()
    pending = [dependant]
    while pending:  # the route's own query parameters and its dependencies'
        current = pending.pop()
        known |= {param.alias for param in current.query_params}
        pending.extend(current.dependencies)
    for name in request.query_params:
        if name not in known:
            takes = ", ".join(sorted(known)) or "none"
            raise Unprocessable(
                f"unknown query parameter {name[:100]!r}; this route takes: {takes}", ["query", name[:100]]
            )


async def require_api_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value()
    if credentials is None or not secrets.compare_digest(credentials.credentials, expected):
        raise ProblemError(401, "missing or wrong API key: send `Authorization: Bearer <RLSCHED_API_KEY>`")
