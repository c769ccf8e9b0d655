"""Dependencies, typed once as Annotated aliases so routes read `session: SessionDep`.

All are `async def`: FastAPI runs plain `def` dependencies on its thread pool, and that
hop costs more than the work they do (sessions connect lazily; SQLite calls are short)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from app.core.config import Settings
from app.errors import ProblemError
from app.services.temporal import TemporalGateway


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_db(request: Request) -> AsyncIterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


async def get_temporal(request: Request) -> TemporalGateway:
    return request.app.state.temporal


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_db)]
TemporalDep = Annotated[TemporalGateway, Depends(get_temporal)]

_bearer = HTTPBearer(auto_error=False, description="Only when RLSCHED_API_KEY is set.")


async def require_api_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value()
    if credentials is None or not secrets.compare_digest(credentials.credentials, expected):
        raise ProblemError(401, "missing or wrong API key: send `Authorization: Bearer <RLSCHED_API_KEY>`")
