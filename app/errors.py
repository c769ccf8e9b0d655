"""Every error leaves the API as problem+json (RFC 9457), including FastAPI's own
validation errors and unknown routes, so a client parses one shape and reads a message
it can act on. Anything unexpected is logged and answered with a generic 500 problem
that never leaks a traceback."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
NUL_DETAIL = "text must not contain NUL (0x00) characters: the database cannot store them"


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
    workflow_id: str | None = None
    id: str | None = None


DOCUMENTED_PROBLEMS: dict[int, str] = {
    400: "Malformed body (not UTF-8 JSON)",
    401: "API key missing or wrong (when RLSCHED_API_KEY is set)",
    413: "Body too large (RLSCHED_MAX_BODY_BYTES)",
    415: "Body not JSON",
    422: "Invalid request (or an unknown query parameter); `errors` lists each field with its location",
    503: "Temporal or the database unavailable; try again",
}
"""The problems any route may answer beside its own (see app.main._document_problems,
which adds them to every operation they apply to)."""


class ProblemError(Exception):
    """Raised by services and routes; the handler turns it into problem+json."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra


class NotFound(ProblemError):
    def __init__(self, detail: str) -> None:
        super().__init__(404, detail)


class Conflict(ProblemError):
    def __init__(self, detail: str) -> None:
        super().__init__(409, detail)


class Unprocessable(ProblemError):
    def __init__(self, detail: str, field: list[str | int] | None = None) -> None:
        errors = [{"loc": field, "msg": detail}] if field else None
        super().__init__(422, detail, errors=errors)


class Unavailable(ProblemError):
    def __init__(self, detail: str) -> None:
        super().__init__(503, detail)


def problem_response(
    status: int, detail: str | None, request: Request | None = None, **extra: Any
) -> JSONResponse:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = Problem(
        title=title,
        status=status,
        detail=detail,
        instance=str(request.url.path) if request is not None else None,
        **{k: v for k, v in extra.items() if k in Problem.model_fields},
    )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def problem_body(status: int, detail: str, instance: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A problem+json body and its headers for plain ASGI code (middlewares) that answers
    before FastAPI's handlers exist for the request."""
    body = json.dumps(
        {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
        | {"instance": instance}
    ).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    return body, headers


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's error dicts carry the offending input and exception objects; keep what a
    client needs (where, what) and drop what may not serialise."""
    out = []
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part != "body" or len(error["loc"]) == 1]
        out.append({"loc": list(loc), "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))})
    return out


def _summary(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _allowed_methods(request: Request) -> list[str]:
    """Every method served at the request's path. Starlette's 405 names only the first
    route that matched the path, but GET and POST of one path are separate routes."""
    routes = request.app.router.routes
    try:  # FastAPI >= 0.163 keeps an included router as one entry: expand it
        from fastapi.routing import iter_route_contexts

        routes = list(iter_route_contexts(routes))
    except ImportError:
        pass
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches({**request.scope, "method": ""})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.detail, request, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _jsonable_errors(exc.errors())
        return problem_response(
            422, _summary(errors) if errors else "invalid request", request, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}; see /docs"
        response = problem_response(exc.status_code, detail, request)
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(RPCError)
    @app.exception_handler(RPCTimeoutOrCancelledError)
    async def _temporal(request: Request, exc: Exception) -> JSONResponse:
        """A safety net: services map the Temporal failures they expect; any other is
        still Temporal's (or the worker's) unavailability, not the client's fault."""
        log.warning("Temporal error on %s %s: %s", request.method, request.url.path, exc)
        return problem_response(503, f"Temporal did not answer: {exc}", request)

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> JSONResponse:
        """The database being unreachable or locked is not the client's fault either."""
        log.warning("database error on %s %s: %s", request.method, request.url.path, exc)
        return problem_response(503, "the database is unavailable; try again shortly", request)

    @app.exception_handler(DataError)
    async def _database_data(request: Request, exc: DataError) -> JSONResponse:
        """A safety net behind the input checks: PostgreSQL refuses NUL characters in text
        (SQLite stores them), and that is the client's input, not a server fault."""
        if "NUL" in str(exc.orig):
            return problem_response(422, NUL_DETAIL, request)
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal error; the server log has the details", request)
