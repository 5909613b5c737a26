"""Typed LLM errors: one class, a short machine-readable ``reason`` and ``retryable``.

Messages are built by us from status codes and error codes, never copied from a
response body wholesale, and pass through :func:`redact` so an API key can never
leak into a log line, a job's error column or a Celery result.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Final


class LLMErrorReason(StrEnum):
    rate_limited = "rate_limited"  # 429 / our global limiter could not admit the call in time
    quota_exceeded = "quota_exceeded"  # 429 insufficient_quota: waiting will not help
    server_error = "server_error"  # 5xx, 409 lock timeouts
    timeout = "timeout"  # HTTP timeout or the call's overall deadline
    connection = "connection"  # could not connect / connection dropped
    malformed_output = "malformed_output"  # content is not JSON
    invalid_schema = "invalid_schema"  # JSON that our pydantic model rejects
    refusal = "refusal"  # the model refused, or a content filter stopped it
    truncated = "truncated"  # finish_reason == "length"
    bad_request = "bad_request"  # 400/404/422: our request is wrong, resending will not help
    auth = "auth"  # 401/403
    unexpected = "unexpected"


RETRYABLE: Final[frozenset[LLMErrorReason]] = frozenset(
    {
        LLMErrorReason.rate_limited,
        LLMErrorReason.server_error,
        LLMErrorReason.timeout,
        LLMErrorReason.connection,
        # A fresh sample usually parses; attempts are bounded by LLM_TASK_MAX_ATTEMPTS.
        LLMErrorReason.malformed_output,
        LLMErrorReason.invalid_schema,
    }
)
# truncated is not retryable: the same prompt with the same max_completion_tokens runs
# out of room again. refusal: the same prompt is refused again.

_SECRET_PATTERNS: Final = (
    re.compile(r"sk-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
)
_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` so :func:`redact` removes it from every error message."""
    if secret and len(secret) >= 4:
        _secrets.add(secret)


def redact(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


class LLMError(Exception):
    """A failed LLM call. ``retryable`` tells a task whether another attempt can help."""

    def __init__(
        self,
        reason: LLMErrorReason,
        message: str,
        *,
        retryable: bool | None = None,
        status_code: int | None = None,
        retry_after_s: float | None = None,
        request_id: str | None = None,
    ) -> None:
        self.reason = LLMErrorReason(reason)
        self.message = redact(message)[:500]
        self.retryable = self.reason in RETRYABLE if retryable is None else retryable
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        self.request_id = request_id
        super().__init__(f"{self.reason}: {self.message}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Celery pickles/serialises exceptions; keyword-only args need an explicit recipe.
        return (
            _rebuild,
            (
                str(self.reason),
                self.message,
                self.retryable,
                self.status_code,
                self.retry_after_s,
                self.request_id,
            ),
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able summary for logs and the item's ``error`` column."""
        return {
            "reason": str(self.reason),
            "message": self.message,
            "retryable": self.retryable,
            "status_code": self.status_code,
            "retry_after_s": self.retry_after_s,
            "request_id": self.request_id,
        }


def _rebuild(
    reason: str,
    message: str,
    retryable: bool,
    status_code: int | None,
    retry_after_s: float | None,
    request_id: str | None,
) -> LLMError:
    return LLMError(
        LLMErrorReason(reason),
        message,
        retryable=retryable,
        status_code=status_code,
        retry_after_s=retry_after_s,
        request_id=request_id,
    )
