"""Answered items saved together (``generation._Saver``) against real Postgres and Redis."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

from redis.asyncio import Redis
from sqlalchemy.exc import DBAPIError

from roadmap_core.domain import ItemStatus
from roadmap_core.progress import ItemEvent, decode_entry, stream_key
from roadmap_core.settings import RedisSettings
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.claims import claim_items
from roadmap_db.repositories.item_results import ItemSave, ResultUsage
from roadmap_worker_content.events import EventPublisher
from roadmap_worker_content.generation import _Batch, _Saver
from roadmap_worker_content.runtime import Runtime
from roadmap_worker_content.testing import Rows, make_request

USAGE = ResultUsage(model="fake", prompt_tokens=1, completion_tokens=1, cost_usd=Decimal(0))


async def test_a_group_that_cannot_be_stored_is_stored_one_by_one(
    db: ProcessDatabase, rows: Rows, redis_url: str
) -> None:
    """One body PostgreSQL refuses (a NUL character, which jsonb cannot hold) fails its
    own item only: the items saved in the same group are stored and announced."""
    job_id, concepts = await rows.job_with_items(1)
    async with db.transaction() as s:
        items = await claim_items(
            s, job_id, concepts, max_attempts=3, lease=timedelta(minutes=5), token="t"
        )
    redis = Redis.from_url(redis_url)
    try:
        publisher = EventPublisher(redis, RedisSettings(redis_url=redis_url))
        runtime = cast(Runtime, SimpleNamespace(db=db, progress=publisher))
        batch = _Batch(runtime, job_id, "t", make_request(), time.monotonic() + 60, {}, {}, {})
        saver = _Saver(batch)
        bodies: list[dict[str, Any]] = [{"n": 0}, {"n": "bad \u0000"}, {"n": 2}]
        # The first save starts alone; the other two arrive while it runs and go together.
        outcomes = await asyncio.gather(
            *(
                saver.save(item, ItemSave(item.id, body, None, USAGE))
                for item, body in zip(items, bodies, strict=True)
            ),
            return_exceptions=True,
        )
        entries = await redis.xrange(stream_key(job_id)) or []
    finally:
        await redis.aclose()
    assert outcomes[0] == 1
    assert isinstance(outcomes[1], DBAPIError)
    assert outcomes[2] == 1
    events = [decode_entry(fields or {}).data for _, fields in entries]
    item_events = [e for e in events if isinstance(e, ItemEvent)]
    assert [e.item_id for e in item_events] == [items[0].id, items[2].id]
    assert [e.progress.done for e in item_events] == [1, 2]
    assert {e.status for e in item_events} == {ItemStatus.succeeded}
