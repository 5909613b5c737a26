"""Issue 19, item 4: a content-worker replica's children share its LLM call slots.

One worker process with three prefork children of ``LLM_CONCURRENCY=4`` each (12 calls
at once if each kept its own slots) and ``WORKER_LLM_SLOTS=5``: the provider never serves
more than 5 of its calls at once, and does serve 5 — so more than one child's slots were
in use together, through the budget the children share.

Before: each child had its own ``LLM_CONCURRENCY`` slots and nothing else, so a child busy
with a plan (two calls in series) left the rest of its slots idle while its siblings could
not use them.
"""

from __future__ import annotations

import pytest

from tests.support.db import Db
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow

CHILDREN = 3
PER_CHILD = 4
REPLICA_SLOTS = 5


async def test_i19_04_a_replicas_children_never_exceed_its_slots_and_fill_them(
    stack: Stack, db: Db
) -> None:
    stack.fake.configure(latency_ms=300)
    stack.start(
        content_workers=1,
        concurrency=CHILDREN,
        settings={"LLM_CONCURRENCY": str(PER_CHILD), "WORKER_LLM_SLOTS": str(REPLICA_SLOTS)},
    )
    client, _ = stack.new_user()
    jobs = [client.create_roadmap(**small_request()).id for _ in range(3)]
    await db.wait_jobs(jobs, {"completed"}, within=120, context=stack.logs)

    calls = stack.fake.requests()
    in_flight = max(c["in_flight"] for c in calls)
    assert in_flight <= REPLICA_SLOTS, in_flight
    assert in_flight == REPLICA_SLOTS, in_flight
