"""A roadmap's execution logs: order, level filter, cursor pagination."""

from __future__ import annotations

import functools
import operator
import uuid

import httpx

from roadmap_api.testing import Account, Seeder
from roadmap_core.domain import JobStatus, LogLevel


async def test_logs_in_order_with_pagination_and_level(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    job = await seed.job(alice, status=JobStatus.generating)
    levels = [LogLevel.debug, LogLevel.info, LogLevel.warning, LogLevel.error, LogLevel.info]
    events = await seed.logs(job.id, levels)
    url = f"/api/v1/roadmaps/{job.id}/logs"

    everything = (await client.get(url, headers=alice.headers)).json()
    assert [e["message"] for e in everything["items"]] == [e.message for e in events]
    assert everything["next_cursor"] is None

    pages, after = [], None
    while True:
        params = {"limit": 2} | ({"after": after} if after else {})
        page = (await client.get(url, params=params, headers=alice.headers)).json()
        pages.append([e["event_id"] for e in page["items"]])
        after = page["next_cursor"]
        if after is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert functools.reduce(operator.iadd, pages, []) == [str(e.event_id) for e in events]

    warnings = (await client.get(url, params={"level": "warning"}, headers=alice.headers)).json()
    assert [e["level"] for e in warnings["items"]] == ["warning", "error"]


async def test_logs_errors(client: httpx.AsyncClient, alice: Account, seed: Seeder) -> None:
    job = await seed.job(alice)
    url = f"/api/v1/roadmaps/{job.id}/logs"
    cases: list[tuple[dict[str, str | int], int]] = [
        ({"after": "garbage"}, 400),
        ({"after": "WyJub3QtYS1kYXRlIiwieCJd"}, 400),
        ({"level": "loud"}, 422),
        ({"limit": 501}, 422),
    ]
    for params, status in cases:
        response = await client.get(url, params=params, headers=alice.headers)
        assert response.status_code == status, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    response = await client.get(f"/api/v1/roadmaps/{uuid.uuid4()}/logs", headers=alice.headers)
    assert response.status_code == 404
    assert (await client.get(url)).status_code == 401
