"""Failed calls as exceptions, each carrying the API's RFC 9457 problem body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from roadmap_client.models import Problem


class ApiError(Exception):
    """A call the API answered with an error (or, ``status == 0``, no usable answer).

    ``problem`` is the problem+json body (``title``, ``detail``, ``errors`` for a 422,
    ``quota`` for a 429…); ``retry_after`` the seconds of a ``Retry-After`` header.
    """

    def __init__(
        self,
        status: int,
        problem: Mapping[str, Any],
        method: str,
        path: str,
        *,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.body = dict(problem)
        self.method = method
        self.path = path
        self.retry_after = retry_after
        title = str(problem.get("title") or "")
        detail = str(problem.get("detail") or "")
        text = ": ".join(part for part in (title, detail) if part) or "no details"
        super().__init__(f"{method} {path} → {status}: {text}")

    @property
    def problem(self) -> Problem:
        """The body as the typed problem model (fields the API did not send are ``None``)."""
        body = {"title": "", "status": self.status, **self.body}
        return Problem.model_validate(body)


class BadRequest(ApiError):
    """400: malformed input (a body that is not JSON, a bad cursor or ``Last-Event-ID``)."""


class Unauthenticated(ApiError):
    """401: missing, invalid, expired or revoked credentials."""


class Forbidden(ApiError):
    """403: authenticated, but not allowed."""


class NotFound(ApiError):
    """404: no such resource (or it belongs to someone else)."""


class Conflict(ApiError):
    """409: not allowed in the resource's current state (``status_now`` says which)."""


class ValidationFailed(ApiError):
    """422: the request did not pass validation (``body["errors"]`` names the fields)."""


class RateLimited(ApiError):
    """429: a rate limit or quota was reached; ``retry_after`` says when to try again."""


class ServiceUnavailable(ApiError):
    """503: a backing service is unavailable, or the server is full; retry later."""


class StreamLost(ApiError):
    """The event stream could not be (re)connected within the allowed attempts."""


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_for(
    status: int,
    problem: Mapping[str, Any],
    method: str,
    path: str,
    retry_after: float | None = None,
) -> ApiError:
    kind = BY_STATUS.get(status, ApiError)
    return kind(status, problem, method, path, retry_after=retry_after)
