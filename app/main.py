"""Builds the FastAPI app. The lifespan migrates the database, creates the (lazily
connected) Temporal client and starts the reconciler; `create_app(settings)` lets tests
and the benchmark build an app on their own database and Temporal address.

Run it with `rlsched api` (or `uvicorn app.main:app`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from app.api.main import api_router
from app.auth import PUBLIC_PATHS, ApiKeyMiddleware
from app.core.config import Settings, get_settings
from app.db import make_engine, migrate
from app.errors import install_problem_handlers
from app.metrics import MetricsAndLimitsMiddleware
from app.services.reconciler import run_reconciler
from app.services.temporal import TemporalGateway
from app.ui import auth as ui_auth
from app.ui import routes as ui

log = logging.getLogger(__name__)

DESCRIPTION = """Train reinforcement-learning cluster-scheduling policies and serve their decisions.

Start a training run, watch its rounds and checkpoints appear, then ask `POST /schedule`
where your pending jobs should go. Errors are `application/problem+json` (RFC 9457)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        if settings.migrate_on_start:
            await asyncio.to_thread(migrate, settings, engine)
        temporal = TemporalGateway(settings)
        app.state.settings, app.state.engine, app.state.temporal = settings, engine, temporal
        reconciler = None
        if settings.reconcile_interval_s > 0:
            reconciler = asyncio.create_task(run_reconciler(engine, temporal, settings), name="reconciler")
        try:
            yield
        finally:
            if reconciler is not None:
                reconciler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reconciler
            await asyncio.to_thread(engine.dispose)  # closes the pooled connections

    app = FastAPI(
        title="rl-scheduler",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "training runs", "description": "Train PPO policies in rounds on Temporal."},
            {
                "name": "training schedules",
                "description": "Start training runs every interval or on a cron (Temporal Schedules).",
            },
            {"name": "schedule", "description": "Placement plans from a checkpoint or a heuristic."},
            {"name": "checkpoints", "description": "Policies saved after each round, with their scores."},
            {
                "name": "clusters",
                "description": "Real clusters (Slurm) steered by a control loop: register, watch, end.",
            },
            {"name": "health", "description": "Probes and metrics."},
        ],
    )
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(api_router)
    ui.install(app)
    api_key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    app.add_middleware(ApiKeyMiddleware, api_key=api_key, browser=ui_auth.browser_area(api_key))
    app.add_middleware(MetricsAndLimitsMiddleware, max_body_bytes=settings.max_body_bytes)  # outermost
    _document_problems(app)
    return app


def _document_problems(app: FastAPI) -> None:
    """FastAPI documents its 422 as `HTTPValidationError` JSON; ours are problem+json.
    Rewrite the schema so clients (and schemathesis) see the responses actually sent,
    and add the problems any route may answer (app.errors.DOCUMENTED_PROBLEMS) where
    they apply: 422 everywhere (an unknown query parameter is one), 400, 413 and 415
    wherever a request carries a body, 401 and 503 beyond the public probes."""
    from fastapi.openapi.utils import get_openapi

    from app.errors import DOCUMENTED_PROBLEMS, Problem

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

        def document(responses: dict, status: int) -> None:
            entry = responses.setdefault(str(status), {"description": DOCUMENTED_PROBLEMS[status]})
            entry["content"] = problem

        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                body = "requestBody" in operation
                responses.pop("422", None)  # every route: unknown query parameters are refused
                document(responses, 422)
                for status in (400, 413, 415) if body else ():
                    document(responses, status)
                if path not in PUBLIC_PATHS:
                    for status in (401, 503):
                        document(responses, status)
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


app = create_app()
