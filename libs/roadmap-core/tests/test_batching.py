"""The natural batcher: lone calls go at once, concurrent ones share a flush, errors reach
every caller of their batch, and no item is ever left waiting."""

from __future__ import annotations

import asyncio

import pytest

from roadmap_core.batching import Batcher


class Recorder:
    def __init__(self, delay_s: float = 0.0, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.delay_s = delay_s
        self.fail_on = fail_on

    async def flush(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        await asyncio.sleep(self.delay_s)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"bad item {self.fail_on}")
        return [item * 10 for item in items]


async def test_a_lone_call_is_flushed_alone_and_gets_its_result() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_batch=8)
    assert await batcher.submit(3) == 30
    assert recorder.batches == [[3]]


async def test_calls_arriving_during_a_flush_share_the_next_one_in_order() -> None:
    recorder = Recorder(delay_s=0.05)
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_batch=100)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)  # the first flush is in flight
    rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 6)]
    assert await asyncio.gather(first, *rest) == [0, 10, 20, 30, 40, 50]
    assert recorder.batches == [[0], [1, 2, 3, 4, 5]]


async def test_batches_never_exceed_max_batch() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_batch=3)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(8)))
    assert results == [i * 10 for i in range(8)]
    assert [len(b) for b in recorder.batches] == [3, 3, 2]


async def test_max_in_flight_bounds_concurrent_flushes() -> None:
    running = 0
    peak = 0

    async def flush(items: list[int]) -> list[int]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return items

    batcher: Batcher[int, int] = Batcher(flush, max_batch=1, max_in_flight=2)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(6))) == list(range(6))
    assert peak == 2


async def test_a_failed_flush_fails_its_batch_only() -> None:
    recorder = Recorder(delay_s=0.02, fail_on=2)
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_batch=10)
    lone = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.005)
    doomed = [asyncio.create_task(batcher.submit(i)) for i in (2, 3)]
    assert await lone == 10
    for task in doomed:
        with pytest.raises(ValueError, match="bad item 2"):
            await task
    assert await batcher.submit(4) == 40  # the batcher keeps working


async def test_a_flush_returning_the_wrong_count_is_an_error_for_its_callers() -> None:
    async def flush(items: list[int]) -> list[int]:
        return []

    batcher: Batcher[int, int] = Batcher(flush, max_batch=4)
    with pytest.raises(RuntimeError, match="0 results for 1"):
        await batcher.submit(1)


async def test_an_item_submitted_as_the_flusher_finishes_is_not_stranded() -> None:
    # A caller resumes as soon as its result is set, before the flusher's task is done: if
    # it submits again straight away, that item must get a flusher of its own.
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_batch=4)
    for i in range(5):
        async with asyncio.timeout(1):  # in this task: it resumes right when i's result is set
            assert await batcher.submit(i) == i * 10
    assert recorder.batches == [[0], [1], [2], [3], [4]]


async def test_a_cancelled_caller_does_not_break_its_batch() -> None:
    recorder = Recorder(delay_s=0.05)
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_batch=4)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.01)
    leaving = asyncio.create_task(batcher.submit(2))
    staying = asyncio.create_task(batcher.submit(3))
    await asyncio.sleep(0)
    leaving.cancel()
    assert await first == 10
    assert await staying == 30
    assert recorder.batches == [[1], [2, 3]]  # its item was still flushed


async def test_aclose_flushes_what_was_submitted_then_refuses() -> None:
    recorder = Recorder(delay_s=0.02)
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_batch=4)
    pending = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    await batcher.aclose()
    assert [task.result() for task in pending] == [0, 10, 20]
    with pytest.raises(RuntimeError, match="closed"):
        await batcher.submit(9)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Batcher(Recorder().flush, max_batch=0)
    with pytest.raises(ValueError, match="at least 1"):
        Batcher(Recorder().flush, max_batch=1, max_in_flight=0)


async def test_an_isolated_error_fails_only_the_items_that_cause_it() -> None:
    async def flush(items: list[int]) -> list[int]:
        if 3 in items or 6 in items:
            raise ValueError("bad row")
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(
        flush, max_batch=16, isolate=lambda exc: isinstance(exc, ValueError)
    )
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)), return_exceptions=True)
    assert [r if isinstance(r, int) else "error" for r in results] == [
        0, 10, 20, "error", 40, 50, "error", 70, 80, 90,
    ]  # fmt: skip


async def test_an_error_that_is_not_isolated_reaches_the_whole_batch_once() -> None:
    recorder = Recorder(fail_on=3)
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_batch=16, isolate=lambda exc: False)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(6)), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert recorder.batches == [[0, 1, 2, 3, 4, 5]]
