"""API-key enforcement for the whole ASGI app, not per router.

A router dependency covers only the routes it is attached to; a middleware also covers
routes added later (a `/ui` router, a mounted static directory, the OpenAPI document and
its docs pages) without anyone remembering to. Only the probes and the metrics stay
public, so orchestrators and Prometheus need no key. The check also runs before the
body is read, so an unauthenticated client cannot make the app parse anything.

The key is compared in constant time over SHA-256 digests, so neither its content nor
its length leaks through timing."""

from __future__ import annotations

import hashlib
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import problem_body

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Answered without a key: liveness, readiness and Prometheus metrics."""


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def presented_key(scope: Scope) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
    return None


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.expected = _digest(api_key.encode()) if api_key else None

    def allowed(self, scope: Scope) -> bool:
        if self.expected is None:
            return True
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path in PUBLIC_PATHS:
            return True
        token = presented_key(scope)
        return token is not None and hmac.compare_digest(_digest(token), self.expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body, headers = problem_body(
            401,
            "missing or wrong API key: send `Authorization: Bearer <RLSCHED_API_KEY>`",
            scope.get("path", ""),
        )
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
