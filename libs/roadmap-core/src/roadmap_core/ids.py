"""Time-ordered identifiers (UUIDv7): index-friendly and sortable by creation time."""

from __future__ import annotations

import uuid

from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    return uuid7()
