"""Natural batching: calls that arrive while a batch is in flight go out together next.

A lone call is flushed at once, so an idle process pays no added latency; under load the
calls that pile up during one round trip share the next one. Nothing waits on a timer: a
closed-loop client (a fixed number of connections) would lose throughput to every
millisecond added.
The hot path of the API uses it twice: one database statement for the submits of many
requests (``roadmap_submit_jobs``) and one Redis round trip for their task messages.

A batch holds the work of many callers (on the API: many users), so one item must not
fail the others. When a flush fails with an error that ``isolate`` says may belong to a
single item (a value the database refuses, say), the batch is split in two and each half
flushed again, down to the failing items alone: they get the error, everyone else their
result. With one bad item among ``n`` that costs about ``2·log2(n)`` extra flushes, paid
only when a flush fails.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[list[T]], Awaitable[Sequence[R]]]
Isolate = Callable[[Exception], bool]


class Batcher(Generic[T, R]):
    """Run ``flush`` over batches of at most ``max_batch`` items, ``max_in_flight`` at once.

    ``flush`` returns one result per item, in order. If it raises, every caller of that
    batch gets the exception: a batch is one unit of work (one statement, one pipeline) —
    unless ``isolate(exc)`` is true, in which case the batch is split until the error is
    down to the items that cause it (see the module's docstring). ``flush`` must then leave
    nothing behind when it raises, so that the items can be flushed again.
    A caller that is cancelled does not take its item out of a batch already flushing.
    """

    def __init__(
        self,
        flush: Flush[T, R],
        *,
        max_batch: int,
        max_in_flight: int = 1,
        isolate: Isolate | None = None,
    ) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._flush = flush
        self._isolate = isolate
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._pending: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._flushers: set[asyncio.Task[None]] = set()
        # Counted by the flushers themselves: a task's done-callback runs a loop iteration
        # after it stops taking items, and an item added in between would wait for nobody.
        self._draining = 0
        self._closed = False

    async def submit(self, item: T) -> R:
        if self._closed:
            raise RuntimeError("batcher is closed")
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._draining < self._max_in_flight:
            self._draining += 1
            task = asyncio.create_task(self._drain())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        return await done

    async def aclose(self) -> None:
        """Refuse new items and wait until what was submitted has been flushed."""
        self._closed = True
        while self._flushers:
            await asyncio.gather(*self._flushers, return_exceptions=True)

    async def _drain(self) -> None:
        try:
            # Yield once first: every submit of this loop iteration (e.g. all the requests a
            # previous batch just released) joins the same batch.
            await asyncio.sleep(0)
            while self._pending:
                batch = [
                    self._pending.popleft() for _ in range(min(self._max_batch, len(self._pending)))
                ]
                try:
                    await self._settle(batch)
                except BaseException:
                    # Cancelled: items still pending go with the next flusher.
                    for _, done in batch:
                        done.cancel()
                    raise
        finally:
            self._draining -= 1

    async def _settle(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        """Flush ``batch`` and hand each caller its result or its error."""
        items = [item for item, _ in batch]
        try:
            results = await self._flush(items)
            if len(results) != len(items):
                raise RuntimeError(f"flush returned {len(results)} results for {len(items)}")
        except Exception as exc:
            if len(batch) > 1 and self._isolate is not None and self._isolate(exc):
                half = len(batch) // 2
                await self._settle(batch[:half])
                await self._settle(batch[half:])
                return
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for (_, done), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)
