"""Promise 10: the logs worker killed mid-batch → every emitted event stored exactly once.

A batch's message is acknowledged only after its transaction committed; a pool process
killed while writing loses its message back to the queue (``reject_on_worker_lost``) and the
redelivered batch inserts only what is missing (rows are keyed by ``event_id``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid

import pytest

from tests.support.db import Db, wait_for
from tests.support.processes import wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

EVENTS = 30_000
MIN_KILLS = 2
MAX_KILLS = 6  # kills go on (within this) until one has landed during a batch write


async def test_p10_logs_worker_killed_mid_batch_every_event_stored_exactly_once(
    stack: Stack, db: Db
) -> None:
    worker = stack.logs_worker(concurrency=1)
    job = uuid.uuid4()

    async def stored() -> int:
        return int(await db.fetchval("SELECT count(*) FROM execution_logs WHERE job_id = $1", job))

    emitter = await stack.log_emitter(job, EVENTS)
    try:
        killed: list[int] = []
        while len(killed) < MIN_KILLS or (
            len(killed) < MAX_KILLS and "WorkerLostError" not in worker.log(2_000_000)
        ):
            # Kill the pool process while it is writing: rows are still arriving.
            before = await stored()

            async def writing(before: int = before) -> bool:
                return await stored() > before

            await wait_for(writing, within=60, what="the logs worker to write", poll=0.02)
            if await stored() >= EVENTS:
                break
            victim = worker.beating_children()[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

            def replaced(victim: int = victim) -> bool:
                beating = worker.beating_children()
                return bool(beating) and victim not in beating

            wait_until(
                replaced,
                timeout=60,
                what="the pool to replace the killed process",
            )
        out, err = await asyncio.wait_for(emitter.communicate(), 180)
    finally:
        if emitter.returncode is None:
            emitter.kill()
            await asyncio.wait_for(emitter.wait(), 10)
    assert emitter.returncode == 0, err.decode(errors="replace")[-3000:]
    shipped = json.loads(out.decode().strip().splitlines()[-1])
    assert (shipped["emitted"], shipped["dropped"]) == (EVENTS, 0), shipped
    assert killed, "every event was stored before a kill could land"

    async def all_stored() -> bool:
        return await stored() >= EVENTS

    await wait_for(all_stored, within=120, what=f"{EVENTS} stored events")
    await asyncio.sleep(1.0)  # a late duplicate would land now
    assert await stored() == EVENTS
    distinct = await db.fetchval(
        "SELECT count(DISTINCT message) FROM execution_logs WHERE job_id = $1", job
    )
    assert distinct == EVENTS
    log = worker.log(2_000_000)
    assert "WorkerLostError" in log, "no kill landed while a batch was being written"
    print(f"p10: {EVENTS} events stored once each; {len(killed)} pool processes killed")
