"""The browser session and cross-site request protection.

The session cookie holds the API's access token (HttpOnly: page scripts never see it;
SameSite=Lax: other sites' forms do not carry it). Every form that changes something also
carries a token bound to the browser: ``HMAC(secret, csrf cookie)``. A cross-site page can
make the browser send the cookie, but can neither read it nor compute the token, so a
forged form is refused (the double-submit pattern, signed so that the field cannot simply
be copied from a cookie an attacker planted on a sibling domain).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "rw_session"
CSRF_COOKIE = "rw_csrf"
CSRF_FIELD = "csrf_token"


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def set_session(response: Response, token: str, max_age: int, *, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure,
        path="/",
    )  # fmt: skip


def clear_session(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)


def browser_key(request: Request) -> tuple[str, bool]:
    """The browser's CSRF cookie value, and whether it is new (to be set on the response)."""
    value = request.cookies.get(CSRF_COOKIE, "")
    if len(value) == 43:  # token_urlsafe(32)
        return value, False
    return secrets.token_urlsafe(32), True


def set_browser_key(response: Response, value: str, *, secure: bool) -> None:
    response.set_cookie(
        CSRF_COOKIE, value, httponly=True, samesite="strict", secure=secure, path="/"
    )


def form_token(secret: bytes, browser: str) -> str:
    return hmac.new(secret, browser.encode(), hashlib.sha256).hexdigest()


def form_token_valid(secret: bytes, request: Request, submitted: str) -> bool:
    browser = request.cookies.get(CSRF_COOKIE, "")
    if not browser or not submitted:
        return False
    return hmac.compare_digest(form_token(secret, browser), submitted)
