"""OpenAPI descriptions of the error responses (all ``application/problem+json``)."""

from __future__ import annotations

from typing import Any

from roadmap_api.errors import Problem

DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, invalid, expired or revoked credentials",
    403: "Authenticated but not allowed",
    404: "No such resource (or it belongs to someone else)",
    409: "Conflict with the current state",
    413: "Request body too large",
    422: "Invalid request (see `errors`)",
    429: "Rate limit or quota exceeded (see `Retry-After`)",
    500: "Unexpected error (quote `request_id` when reporting it)",
    503: "A backing service is unavailable (see `Retry-After`)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem, "description": DESCRIPTIONS[code]} for code in codes}


AUTH_ERRORS = errors(401)
