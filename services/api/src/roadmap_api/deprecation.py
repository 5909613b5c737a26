"""Deprecating an operation of ``/api/v1`` the way docs/api.md promises.

A route declared with ``**deprecated(Deprecation(...))`` is ``deprecated: true`` in the
document, with its dates in ``x-deprecation``; every response it gives carries
``Deprecation: @<unix time>`` (RFC 9745), ``Sunset: <HTTP date>`` (RFC 8594) and
``Link: <changelog>; rel="deprecation"`` (``RequestContextMiddleware`` adds them, so error
responses carry them too). The sunset is at least six months after the deprecation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Final

EXTENSION: Final = "x-deprecation"
MIN_NOTICE: Final = timedelta(days=183)


@dataclass(frozen=True, slots=True)
class Deprecation:
    since: datetime
    sunset: datetime
    changelog: str  # where the changelog announces it (the `Link` target)

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.sunset.tzinfo is None:
            raise ValueError("deprecation dates need a time zone")
        if self.sunset - self.since < MIN_NOTICE:
            raise ValueError("the sunset must be at least six months after the deprecation")

    def as_extension(self) -> dict[str, str]:
        return {
            "since": self.since.astimezone(UTC).isoformat(),
            "sunset": self.sunset.astimezone(UTC).isoformat(),
            "changelog": self.changelog,
        }


def deprecated(notice: Deprecation) -> dict[str, Any]:
    """Keyword arguments of a route decorator that deprecate its operation."""
    return {"deprecated": True, "openapi_extra": {EXTENSION: notice.as_extension()}}


def response_headers(openapi_extra: dict[str, Any] | None) -> list[tuple[bytes, bytes]]:
    """The headers of a response of a route with this ``openapi_extra`` (none if current)."""
    notice = (openapi_extra or {}).get(EXTENSION)
    if notice is None:
        return []
    since = datetime.fromisoformat(notice["since"])
    sunset = datetime.fromisoformat(notice["sunset"])
    return [
        (b"deprecation", f"@{int(since.timestamp())}".encode("latin-1")),
        (b"sunset", format_datetime(sunset, usegmt=True).encode("latin-1")),
        (b"link", f'<{notice["changelog"]}>; rel="deprecation"'.encode("latin-1")),
    ]
