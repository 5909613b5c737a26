"""Lease renewal: while a task works, it proves every third of the lease that it is alive.

A claim whose lease is not renewed (its process died, or hangs) becomes
claimable by others after ``ITEM_LEASE_S``, and the reconciler re-sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.claims import heartbeat_items, heartbeat_job

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def renewing_lease(
    db: ProcessDatabase,
    token: str,
    *,
    interval_s: float,
    job_id: uuid.UUID | None = None,
) -> AsyncIterator[None]:
    """Renew, every ``interval_s``, the job's lease (``job_id`` given) or the item leases
    held under ``token``, for as long as the block runs."""

    stop = asyncio.Event()

    async def renew() -> None:
        while True:
            # Waiting on an event rather than being cancelled: a renewal in flight
            # always completes its transaction.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
                return
            try:
                async with db.transaction() as session:
                    if job_id is not None:
                        await heartbeat_job(session, job_id, token)
                    else:
                        await heartbeat_items(session, token)
            except Exception as exc:
                # The next renewal may succeed; if none does, the lease lapses as designed.
                log.warning("lease renewal failed: %s", exc)

    task = asyncio.create_task(renew(), name=f"lease-{token}")
    try:
        yield
    finally:
        stop.set()
        await task
