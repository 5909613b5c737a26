"""Opaque keyset-pagination cursors (base64url JSON), stable under concurrent inserts."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


class InvalidCursor(ValueError):
    pass


def encode_cursor(*values: Any) -> str:
    raw = json.dumps([str(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if (
        not isinstance(values, list)
        or len(values) != arity
        or not all(isinstance(v, str) for v in values)
    ):
        raise InvalidCursor("malformed cursor")
    return values
