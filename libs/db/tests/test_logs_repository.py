from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from roadmap_core.contracts import LogEvent
from roadmap_core.domain import LogLevel
from roadmap_core.ids import new_id
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.cursor import InvalidCursor, decode_cursor, encode_cursor
from roadmap_db.repositories.logs import delete_logs_before, insert_log_events, page_job_logs


def _events(job_id: uuid.UUID, n: int, start: datetime) -> list[LogEvent]:
    return [
        LogEvent(
            event_id=new_id(),
            job_id=job_id,
            message=f"event {i}",
            level=LogLevel.error if i % 5 == 0 else LogLevel.info,
            ts=start + timedelta(milliseconds=i),
        )
        for i in range(n)
    ]


async def test_bulk_insert_is_idempotent(db: ProcessDatabase) -> None:
    events = _events(uuid.uuid4(), 20, datetime.now(UTC))
    async with db.transaction() as s:
        assert await insert_log_events(s, events) == 20
    async with db.transaction() as s:
        assert (
            await insert_log_events(s, events[:10] + _events(uuid.uuid4(), 5, datetime.now(UTC)))
            == 5
        )


async def test_cursor_pagination_walks_one_job_in_order(db: ProcessDatabase) -> None:
    job_id = uuid.uuid4()
    events = _events(job_id, 23, datetime.now(UTC))
    async with db.transaction() as s:
        await insert_log_events(
            s, list(reversed(events)) + _events(uuid.uuid4(), 7, datetime.now(UTC))
        )
    seen: list[str] = []
    cursor = None
    async with db.sessions() as s:
        while True:
            rows, cursor = await page_job_logs(s, job_id, limit=10, after=cursor)
            seen.extend(r.message for r in rows)
            if cursor is None:
                break
        errors, _ = await page_job_logs(s, job_id, limit=100, min_level=LogLevel.warning)
    assert seen == [f"event {i}" for i in range(23)]
    assert [r.message for r in errors] == [f"event {i}" for i in range(0, 23, 5)]


async def test_retention_deletes_only_old_rows_in_chunks(db: ProcessDatabase) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as s:
        await insert_log_events(s, _events(uuid.uuid4(), 15, now - timedelta(days=40)))
        await insert_log_events(s, _events(uuid.uuid4(), 5, now))
    async with db.transaction() as s:
        assert await delete_logs_before(s, now - timedelta(days=30), chunk=10) == 10
    async with db.transaction() as s:
        assert await delete_logs_before(s, now - timedelta(days=30), chunk=10) == 5
        assert await delete_logs_before(s, now - timedelta(days=30), chunk=10) == 0


def test_cursor_round_trip_and_garbage() -> None:
    assert decode_cursor(encode_cursor("a", 1), 2) == ["a", "1"]
    for bad in ["", "!!!", encode_cursor("only-one")]:
        with pytest.raises(InvalidCursor):
            decode_cursor(bad, 2)
