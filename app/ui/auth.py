"""The dashboard's login: the same API key as the API, carried the way a browser can.

A browser cannot add `Authorization: Bearer` to a link it follows, so the dashboard
also takes the key once, from its login form or as `?key=` (handy from a terminal:
`open http://host:8000/ui?key=...`), and answers with a cookie. The cookie holds an
HMAC of the key, not the key: a leaked cookie opens the read-only dashboard but is no
API credential. It is HttpOnly (no script reads it), SameSite=Strict (no other site
makes the browser send it) and scoped to /ui, and the API itself never accepts it, so
the API's endpoints stay free of cookie-borne CSRF. `?key=` is redirected away at once
so the key does not stay in the address bar or browser history. With no key set
(the local default) everything is open, as the API is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse

from app.auth import BrowserArea
from app.core.config import Settings

COOKIE = "rlsched_ui"
COOKIE_MAX_AGE_S = 7 * 24 * 3600
PREFIX = "/ui"
LOGIN_PATH = "/ui/login"
OPEN_PATHS = frozenset({LOGIN_PATH, "/ui/logout"})


class LoginRequired(Exception):
    """Raised by `require_ui_login`; the app answers with a redirect (see install)."""

    def __init__(self, response: RedirectResponse) -> None:
        self.response = response


def cookie_value(key: str) -> str:
    return hmac.new(key.encode(), b"rlsched-ui-session", hashlib.sha256).hexdigest()


def browser_area(api_key: str | None) -> BrowserArea | None:
    """What app.auth.ApiKeyMiddleware needs to guard every /ui path, including pages
    added later without `require_ui_login`: the open pages, the cookie, the login page."""
    if api_key is None:
        return None
    return BrowserArea(PREFIX, LOGIN_PATH, OPEN_PATHS, COOKIE, cookie_value(api_key))


def key_is_right(settings: Settings, given: str | None) -> bool:
    if settings.api_key is None:
        return True
    return given is not None and secrets.compare_digest(given, settings.api_key.get_secret_value())


def with_cookie(response: RedirectResponse, request: Request, settings: Settings) -> RedirectResponse:
    if settings.api_key is not None:
        response.set_cookie(
            COOKIE,
            cookie_value(settings.api_key.get_secret_value()),
            max_age=COOKIE_MAX_AGE_S,
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


def safe_next(target: str | None) -> str:
    """Only a path inside the dashboard: never an open redirect to another site."""
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui"


async def require_ui_login(request: Request) -> None:
    """Trade a `?key=` for the cookie and take it out of the address bar. Whether the
    request may see a page at all is app.auth.ApiKeyMiddleware's call, made before this
    runs: it lets through only the right bearer key, cookie or `?key=`, and sends
    everyone else to the login page."""
    settings: Settings = request.app.state.settings
    if request.query_params.get("key") is None:
        return
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "key"]
    target = request.url.path + (f"?{urlencode(query)}" if query else "")
    raise LoginRequired(with_cookie(RedirectResponse(target, status_code=303), request, settings))
