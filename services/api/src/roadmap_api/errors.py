"""One error base class, one problem shape (RFC 9457 ``application/problem+json``).

Every error leaves the API through :func:`problem_response`: raised ``ApiError``\\ s,
validation errors, routing errors (404/405), oversized bodies (413), database or Redis
outages (503) and unexpected exceptions (500, no details). Request input is never echoed,
so a password sent to the wrong field does not end up in a response or a log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import asyncpg
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from roadmap_api.context import current_request_id

log = logging.getLogger("roadmap_api.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:roadmap-agent:problem:"
CANDIDATE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, with a request id and (for 422) the invalid fields."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", examples=[TYPE_PREFIX + "not-found"])
    title: str
    status: int
    detail: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="422: the invalid fields")
    quota: str | None = Field(default=None, description="429: which quota was reached")
    limit: int | None = Field(default=None, description="429: that quota's limit")
    status_now: str | None = Field(
        default=None, description="409: the roadmap's status that did not allow the change"
    )


class ApiError(Exception):
    """Base of every error the API raises on purpose."""

    status: int = 500
    slug: str | None = None
    title: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.default_title())
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    @classmethod
    def default_title(cls) -> str:
        return cls.title or HTTPStatus(cls.status).phrase

    @property
    def type_uri(self) -> str:
        return TYPE_PREFIX + self.slug if self.slug else "about:blank"


class BadRequest(ApiError):
    status, slug = 400, "bad-request"


class Unauthorized(ApiError):
    status, slug, title = 401, "unauthorized", "Not authenticated"

    def __init__(self, detail: str | None = None, *, error: str | None = None) -> None:
        challenge = 'Bearer realm="roadmap-agent"'
        if error:
            challenge += f', error="{error}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(ApiError):
    status, slug = 403, "forbidden"


class NotFound(ApiError):
    status, slug = 404, "not-found"


class Conflict(ApiError):
    status, slug = 409, "conflict"


class InvalidState(Conflict):
    slug, title = "invalid-state", "Not allowed in the current state"


class InvalidInput(ApiError):
    """422 for a rule the service checks itself (one that needs the database, say), in
    the shape of a validation error: ``errors`` names the field."""

    status, slug, title = 422, "validation", "Invalid request"

    def __init__(self, detail: str, *, loc: list[str | int]) -> None:
        super().__init__(detail, errors=[{"loc": loc, "msg": detail, "type": "value_error"}])


class TooManyRequests(ApiError):
    status, slug = 429, "rate-limited"

    def __init__(self, detail: str, *, retry_after_s: int, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, int(retry_after_s)))}, **extra)


class QuotaExceeded(TooManyRequests):
    slug, title = "quota-exceeded", "Quota exceeded"


class ServiceUnavailable(ApiError):
    status, slug = 503, "unavailable"

    def __init__(self, detail: str, *, retry_after_s: int = 5, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)}, **extra)


class BodyTooLarge(StarletteHTTPException):
    """Raised while the body streams in; an HTTPException so FastAPI's body parsing re-raises it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body larger than {limit} bytes")


def problem_response(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_uri: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_uri,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # Only location, message and type: never ``input`` or ``ctx`` (they echo request data).
    out = []
    for err in errors:
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
    return out


DATABASE_UNAVAILABLE = (
    sa_exc.TimeoutError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    # A connection whose server went away while it was idle can refuse the next statement
    # with this instead of a connection error.
    asyncpg.exceptions.InternalClientError,
)


# SQLSTATE classes/codes meaning "the database cannot serve this now; retry": connection
# exceptions, too many connections, statement timeout/cancel, shutdown, lock timeout, deadlock.
_TRANSIENT_SQLSTATES = ("08", "53300", "57014", "57P01", "57P02", "57P03", "55P03", "40P01")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (SQLAlchemy's ``orig``, then ``__cause__``), a few levels."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < 5:
        found.append(current)
        current = current.orig if isinstance(current, sa_exc.DBAPIError) else current.__cause__
    return found


def _sqlstate(exc: BaseException) -> str:
    for link in _chain(exc):
        for name in ("sqlstate", "pgcode"):
            value = getattr(link, name, None)
            if isinstance(value, str):
                return value
    return ""


def is_database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the database is unreachable, saturated or slow."""
    for link in _chain(exc):
        if isinstance(link, (*DATABASE_UNAVAILABLE, OSError, TimeoutError)):
            return True
        if isinstance(link, sa_exc.DBAPIError) and link.connection_invalidated:
            return True
    return _sqlstate(exc).startswith(_TRANSIENT_SQLSTATES)


def is_bad_data(exc: BaseException) -> bool:
    """SQLSTATE class 22 (data exception): a value Postgres cannot store, such as a NUL
    character in text or JSON. Validation refuses the ones we know of (``roadmap_core.text``)."""
    return _sqlstate(exc).startswith("22")


def allowed_methods(request: Request) -> str:
    """Every method some route accepts on this path (Starlette's 405 names only the first
    route that matched the path, so ``GET`` hid ``DELETE`` on the same path)."""
    allowed = []
    for method in CANDIDATE_METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


# Errors a single row of a statement can cause (its values or its constraints), as opposed
# to errors of the connection or the server: data exception, integrity constraint
# violation, program limit exceeded (a value too large to index, say).
_ROW_SQLSTATE_CLASSES = ("22", "23", "54")


def is_row_error(exc: Exception) -> bool:
    """Whether ``exc`` may be down to one row of a batched statement (see ``Batcher``)."""
    return _sqlstate(exc).startswith(_ROW_SQLSTATE_CLASSES)


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return problem_response(
            exc.status,
            title=exc.default_title(),
            detail=exc.detail,
            type_uri=exc.type_uri,
            headers=exc.headers,
            **exc.extra,
        )

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if any(err.get("type") == "json_invalid" for err in exc.errors()):
            # Not a JSON document at all: nothing was validated, so it is not a 422.
            return problem_response(
                400,
                detail="The request body is not valid JSON.",
                type_uri=TYPE_PREFIX + "bad-request",
            )
        return problem_response(
            422,
            title="Invalid request",
            detail="The request did not pass validation; see errors.",
            type_uri=TYPE_PREFIX + "validation",
            errors=_field_errors(exc.errors()),
        )

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail: str | None = exc.detail if isinstance(exc.detail, str) else None
        if detail == HTTPStatus(exc.status_code).phrase:
            detail = None
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem_response(exc.status_code, detail=detail, headers=headers)

    async def on_redis_error(request: Request, exc: Exception) -> JSONResponse:
        log.warning("redis unavailable: %s", type(exc).__name__)
        return problem_response(
            503,
            detail="A backing service is unavailable; retry shortly.",
            type_uri=TYPE_PREFIX + "unavailable",
            headers={"Retry-After": "5"},
        )

    async def on_backend_error(request: Request, exc: Exception) -> JSONResponse:
        if is_bad_data(exc):
            log.warning("value refused by the database: %s", _sqlstate(exc))
            return problem_response(
                422,
                title="Invalid request",
                detail="The request holds a value that cannot be stored (such as a NUL character).",
                type_uri=TYPE_PREFIX + "validation",
            )
        if is_database_outage(exc):
            log.warning("database unavailable: %s", type(exc).__name__)
            return problem_response(
                503,
                detail="The database is unavailable; retry shortly.",
                type_uri=TYPE_PREFIX + "unavailable",
                headers={"Retry-After": "5"},
            )
        for link in _chain(exc):
            if isinstance(link, sa_exc.StatementError):
                # Its text would carry the statement's parameters: emails, hashes, bodies.
                link.hide_parameters = True
        log.error("unhandled error", exc_info=exc)
        return problem_response(500, type_uri=TYPE_PREFIX + "internal")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(redis.exceptions.ConnectionError, on_redis_error)
    app.add_exception_handler(redis.exceptions.TimeoutError, on_redis_error)
    # Handled here (not as a bare ``Exception`` handler, which Starlette re-raises after
    # answering) so outages become a clean 503 and anything else a logged 500.
    for backend_error in (
        sa_exc.SQLAlchemyError,
        asyncpg.exceptions.PostgresError,
        asyncpg.exceptions.InterfaceError,
        asyncpg.exceptions.InternalClientError,
        OSError,
        TimeoutError,
    ):
        app.add_exception_handler(backend_error, on_backend_error)
