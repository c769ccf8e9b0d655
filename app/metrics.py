"""Prometheus metrics and the one ASGI middleware that also enforces the body size limit
and rejects NUL characters in the path and query (PostgreSQL cannot store or even compare
them in text, so an id like `a%00b` would otherwise fail deep in the database layer).

A plain ASGI middleware rather than Starlette's BaseHTTPMiddleware: the latter wraps
every request in extra tasks and streams, which costs measurable latency per call on
the schedule hot path. Requests are labelled by route template, never by raw path, so an
id in the URL cannot blow up the label set.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import NUL_DETAIL, problem_body

REQUESTS = Counter("rlsched_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "rlsched_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SCHEDULE_PLANS = Counter("rlsched_schedule_plans_total", "Plans answered", ["policy_kind", "outcome"])
RUNS_STARTED = Counter("rlsched_training_runs_started_total", "Training runs started")
RECONCILE_SECONDS = Histogram("rlsched_reconcile_seconds", "Duration of one reconciler pass")
LIVE_RUNS = Gauge("rlsched_live_training_runs", "Runs running or stopping, as last reconciled")


class BodyTooLarge(Exception):
    pass


class MetricsAndLimitsMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500, "sent": False}
        limit = self.max_body_bytes
        length = _content_length(scope)
        if length is not None and length > limit:
            await _too_large(send, limit, scope)
            self._observe(scope, 413, started)
            return
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await _problem(send, 422, NUL_DETAIL, scope)
            self._observe(scope, 422, started)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not status["sent"]:
                await _too_large(send, limit, scope)
            status["code"] = 413
        finally:
            self._observe(scope, status["code"], started)

    def _observe(self, scope: Scope, code: int, started: float) -> None:
        route = _route_template(scope)
        method = scope.get("method", "")
        REQUESTS.labels(method, route, str(code)).inc()
        LATENCY.labels(method, route).observe(time.perf_counter() - started)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int, scope: Scope) -> None:
    detail = f"request body exceeds {limit} bytes; a plan takes at most 2,000 nodes, 10,000 jobs"
    await _problem(send, 413, detail, scope)


async def _problem(send: Send, status: int, detail: str, scope: Scope) -> None:
    body, headers = problem_body(status, detail, scope.get("path", "").replace("\x00", "\\x00"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return str(route.path)
    app: Any = scope.get("app")
    router = getattr(app, "router", None)
    for candidate in getattr(router, "routes", []):
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return str(getattr(candidate, "path", "other"))
    return "unmatched"
