"""Credentials never reach a log line: every handler of the API process formats through
:class:`RedactingFormatter`, which masks them in the finished line.

A client may put a credential where we never asked for one: ``?access_token=…`` or
``?api_key=…`` in a URL (an ``EventSource`` cannot set headers), a header dumped by a
library, a token pasted into a field that ends up in an error message. Masking the
finished line covers every logger, uvicorn's included, whatever its format.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

# Query or form parameters that carry credentials: ``name=value`` up to the next separator.
_PARAMETER = re.compile(
    r"(?i)\b((?:access|refresh|id)_token|token|api[_-]?key|apikey|key|password|passwd|"
    r"secret|client_secret|signature|sig|auth|jwt)=([^&\s\"'<>]+)"
)
# Headers carrying credentials, as ``Name: value`` or in a (name, value) pair.
_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|x-api-key)"
    r"((?:['\"]?\s*[:=,]\s*(?:b(?=['\"]))?['\"]?)|(?:\s+))([^'\"\r\n]+)"
)
# Shapes of credentials wherever they appear: bearer tokens, JWTs, our API keys.
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}")
_API_KEY = re.compile(r"\brmk_[A-Za-z0-9_-]{8,}")
# Every pattern above needs one of these (lower-cased); most lines hold none, and these
# substring tests cost a microsecond where one regular expression search costs ten.
_TRIGGERS = ("auth", "cookie", "key", "bearer", "basic", "eyj", "rmk_")


def redact(text: str) -> str:
    """``text`` with every credential it seems to hold replaced by ``***``."""
    lowered = text.lower()
    if "=" not in text and not any(trigger in lowered for trigger in _TRIGGERS):
        return text
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _PARAMETER.sub(lambda m: f"{m.group(1)}={MASK}", text)
    text = _JWT.sub(MASK, text)
    return _API_KEY.sub(MASK, text)


class RedactingFormatter(logging.Formatter):
    """Formats with the handler's own formatter, then masks credentials in the result."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


# Loggers that may have handlers of their own (uvicorn configures its loggers itself).
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


def redact_every_handler() -> None:
    """Wrap the formatter of every handler of the process's loggers (idempotent)."""
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler.formatter, RedactingFormatter):
                handler.setFormatter(RedactingFormatter(handler.formatter))
