"""Deprecating an operation: the document says so, and every response announces the sunset."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from roadmap_api.deprecation import Deprecation, deprecated
from roadmap_api.main import app
from roadmap_api.openapi import build_document

from .conftest import AppFactory, client_for

NOTICE = Deprecation(
    since=datetime(2027, 1, 1, tzinfo=UTC),
    sunset=datetime(2027, 7, 15, 12, tzinfo=UTC),
    changelog="https://example.test/api/CHANGELOG.md#300",
)


async def test_a_deprecated_operation_announces_its_sunset(app_factory: AppFactory) -> None:
    old = await app_factory()

    @old.get("/api/v1/old-thing", operation_id="old_thing_get", **deprecated(NOTICE))
    async def old_thing(n: int = 1) -> dict[str, int]:
        return {"n": n}

    async with client_for(old) as client:
        ok = await client.get("/api/v1/old-thing")
        refused = await client.get("/api/v1/old-thing", params={"n": "many"})
        current = await client.get("/healthz")
    for response in (ok, refused):
        assert response.headers["Deprecation"] == f"@{int(NOTICE.since.timestamp())}"
        assert response.headers["Sunset"] == "Thu, 15 Jul 2027 12:00:00 GMT"
        assert response.headers["Link"] == f'<{NOTICE.changelog}>; rel="deprecation"'
    assert (ok.status_code, refused.status_code) == (200, 422)
    assert "Deprecation" not in current.headers

    document = build_document(old)
    operation = document["paths"]["/api/v1/old-thing"]["get"]
    assert operation["deprecated"] is True
    assert operation["x-deprecation"]["sunset"] == "2027-07-15T12:00:00+00:00"
    for response in operation["responses"].values():
        assert {"Deprecation", "Sunset", "Link"} <= set(response["headers"])
    assert {"Deprecation", "Sunset", "Link"} <= set(document["components"]["headers"])


def test_the_document_of_today_has_no_deprecated_operation() -> None:
    # Nothing of /api/v1 is deprecated yet (docs/api.md says so): no such headers declared.
    document = build_document(app)
    assert not any(
        op.get("deprecated") for item in document["paths"].values() for op in item.values()
    )
    assert "Sunset" not in document["components"]["headers"]


def test_a_sunset_needs_six_months_notice() -> None:
    with pytest.raises(ValueError, match="six months"):
        Deprecation(NOTICE.since, datetime(2027, 3, 1, tzinfo=UTC), NOTICE.changelog)
