"""API-key enforcement for the whole ASGI app, not per router.

A router dependency covers only the routes it is attached to; a middleware also covers
routes added later (a new dashboard page, a mounted static directory, the OpenAPI
document and its docs pages) without anyone remembering to. Only the probes and the
metrics stay public, so orchestrators and Prometheus need no key. The check runs before
the body is read, so an unauthenticated client cannot make the app parse anything.

The API takes the key as `Authorization: Bearer <key>` only. The dashboard (a browser
area, `/ui`) also takes its session cookie (app/ui/auth.py: an HMAC of the key, scoped
to /ui), and `?key=` which its own login dependency turns into that cookie; its login
and logout pages are open, and anything else there without credentials is redirected
to the login page instead of a JSON 401. The cookie never opens the API.

Keys are compared in constant time over SHA-256 digests, so neither their content nor
their length leaks through timing."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import problem_body

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Answered without a key: liveness, readiness and Prometheus metrics."""


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def _same(given: bytes | None, expected_digest: bytes) -> bool:
    return given is not None and hmac.compare_digest(_digest(given), expected_digest)


def presented_key(scope: Scope) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
    return None


def _cookie(scope: Scope, name: str) -> bytes | None:
    for header, value in scope.get("headers", []):
        if header == b"cookie":
            for part in value.split(b";"):
                key, _, cookie = part.strip().partition(b"=")
                if key == name.encode():
                    return cookie
    return None


@dataclass(frozen=True)
class BrowserArea:
    """A path prefix browsers use, with its own ways in besides the bearer key."""

    prefix: str
    login_path: str
    open_paths: frozenset[str]
    cookie_name: str
    cookie_value: str = field(repr=False)


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, api_key: str | None, browser: BrowserArea | None = None) -> None:
        self.app = app
        self.expected = _digest(api_key.encode()) if api_key else None
        self.browser = browser
        self.cookie = _digest(browser.cookie_value.encode()) if browser is not None else b""

    def _in_browser_area(self, path: str) -> bool:
        prefix = self.browser.prefix if self.browser is not None else None
        return prefix is not None and (path == prefix or path.startswith(prefix + "/"))

    def allowed(self, scope: Scope, path: str) -> bool:
        if self.expected is None or path in PUBLIC_PATHS:
            return True
        if _same(presented_key(scope), self.expected):
            return True
        if self.browser is None or not self._in_browser_area(path):
            return False
        if path in self.browser.open_paths or _same(_cookie(scope, self.browser.cookie_name), self.cookie):
            return True
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        return _same(query["key"].encode(), self.expected) if "key" in query else False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if self.allowed(scope, path):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if self.browser is not None and self._in_browser_area(path):
            query = scope.get("query_string", b"").decode("latin-1")
            failed = {"failed": 1} if "key=" in query else {}
            target = path + (f"?{query}" if query and "key=" not in query else "")
            location = f"{self.browser.login_path}?{urlencode({'next': target, **failed})}"
            headers = [(b"location", location.encode()), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 303, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body, headers = problem_body(
            401,
            "missing or wrong API key: send `Authorization: Bearer <RLSCHED_API_KEY>`",
            path,
        )
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
