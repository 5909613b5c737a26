"""The execution-log emitter against a real Redis broker (no logs worker: messages are read
back from the ``logs`` queue and validated with the worker's contract)."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery
from redis import Redis

from roadmap_core import logship, telemetry
from roadmap_core.broker_queues import task_of
from roadmap_core.celery_app import create_celery_app
from roadmap_core.contracts import LOGS_QUEUE, WRITE_LOG_BATCH, LogEvent, WriteLogBatch
from roadmap_core.domain import LogCategory, LogLevel
from roadmap_core.logdetails import (
    LlmCallDetails,
    PlanFailedDetails,
    StepStartedDetails,
    TruncatedDetails,
    parse_produced,
    parse_stored,
)
from roadmap_core.settings import LogShipSettings, RedisSettings
from roadmap_devservers.embedded import EmbeddedRedis


def _app(url: str) -> Celery:
    return create_celery_app("logship-tests", RedisSettings(redis_url=url))


def _settings(**overrides: Any) -> LogShipSettings:
    base: dict[str, Any] = {"log_batch_size": 100, "log_flush_interval_ms": 50}
    return LogShipSettings(**(base | overrides))


NOTE = PlanFailedDetails()


def _llm_call(i: int) -> LlmCallDetails:
    return LlmCallDetails(
        model="m", prompt_tokens=i, completion_tokens=1, cost_usd="0.01", outcome="ok"
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shipped(url: str) -> list[WriteLogBatch]:
    """Every batch in the ``logs`` queue, oldest first, validated like the worker does."""
    client = Redis.from_url(url)
    try:
        raw = client.lrange(LOGS_QUEUE, 0, -1)
    finally:
        client.close()
    batches = []
    for item in reversed(raw):  # kombu LPUSHes and consumers BRPOP
        task, payload, _headers = task_of(item)
        assert task == WRITE_LOG_BATCH.name
        batches.append(WriteLogBatch.model_validate(payload))
    return batches


def events_of(url: str) -> list[LogEvent]:
    return [e for b in shipped(url) for e in b.events]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def url(redis_url: str) -> Iterator[str]:
    client = Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    logship.reset(1.0)
    yield redis_url
    logship.reset(1.0)


def test_events_are_shipped_in_batches_as_valid_log_events(url: str) -> None:
    logship.configure_logship(_app(url), _settings(), source="t")
    job, concept = uuid.uuid4(), uuid.uuid4()
    for i in range(250):
        logship.emit(
            f"event {i}",
            job_id=job,
            concept_id=concept if i % 2 else None,
            level=LogLevel.warning,
            category=LogCategory.llm,
            step="content_generation",
            details=_llm_call(i),
            duration_ms=1.5,
        )
    assert logship.flush(10)

    batches = shipped(url)
    assert all(1 <= len(b.events) <= 100 for b in batches)
    events = [e for b in batches for e in b.events]
    assert [e.message for e in events] == [f"event {i}" for i in range(250)]
    assert len({e.event_id for e in events}) == 250
    assert all(e.event_id.version == 7 for e in events)
    assert [e.ts for e in events] == sorted({e.ts for e in events})  # strictly increasing
    assert {e.ts.utcoffset() for e in events} == {timedelta(0)}
    first, second = events[0], events[1]
    assert (first.job_id, first.concept_id, second.concept_id) == (job, None, concept)
    assert (first.level, first.category, first.step) == (
        LogLevel.warning,
        LogCategory.llm,
        "content_generation",
    )
    assert (first.details, first.duration_ms) == (
        _llm_call(0).model_dump(mode="json", exclude_none=True),
        1.5,
    )
    assert [parse_produced(e.details) for e in events[:3]] == [_llm_call(i) for i in range(3)]
    st = logship.stats()
    assert (st.emitted, st.shipped, st.dropped, st.pending) == (250, 250, 0, 0)


def test_a_full_batch_ships_without_waiting_for_the_interval(url: str) -> None:
    logship.configure_logship(
        _app(url), _settings(log_batch_size=10, log_flush_interval_ms=60_000), source="t"
    )
    time.sleep(0.1)  # the shipper is now parked on its (one-minute) interval
    for i in range(25):
        logship.emit(f"e{i}", details=NOTE)
    wait_for(lambda: logship.stats().shipped == 20)
    assert [len(b.events) for b in shipped(url)] == [10, 10]
    assert logship.stats().pending == 5
    assert logship.flush(10)
    assert [len(b.events) for b in shipped(url)] == [10, 10, 5]


def test_a_partial_batch_ships_after_the_interval(url: str) -> None:
    logship.configure_logship(
        _app(url), _settings(log_batch_size=1000, log_flush_interval_ms=50), source="t"
    )
    for i in range(3):
        logship.emit(f"e{i}", details=NOTE)
    wait_for(lambda: len(events_of(url)) == 3)


def test_events_emitted_before_configure_are_kept_and_shipped(url: str) -> None:
    for i in range(5):
        logship.emit(f"early {i}", details=NOTE)
    st = logship.stats()
    assert (st.configured, st.pending, st.shipped) == (False, 5, 0)
    assert not logship.flush(0.1)
    logship.configure_logship(_app(url), _settings(), source="t")
    assert logship.flush(10)
    assert [e.message for e in events_of(url)] == [f"early {i}" for i in range(5)]


def test_details_are_size_capped_with_a_typed_marker(url: str) -> None:
    logship.configure_logship(_app(url), _settings(log_details_max_bytes=256), source="t")
    big_errors = [f"error {i}: " + "x" * 100 for i in range(100)]
    logship.emit("big", details=StepStartedDetails(round=1, errors=big_errors))
    logship.emit("small", details=StepStartedDetails(round=2, errors=["one"]))
    assert logship.flush(5)
    big, small = events_of(url)
    assert len(json.dumps(big.details)) <= 256
    marker = parse_stored(big.details)
    assert isinstance(marker, TruncatedDetails)
    assert marker.original_kind == "step_started"
    assert marker.original_bytes > 10_000
    assert marker.preview.startswith('{"round":1,"errors":["error 0')
    assert parse_produced(small.details) == StepStartedDetails(round=2, errors=["one"])


def test_emit_never_raises_and_keeps_events_valid(url: str) -> None:
    logship.configure_logship(_app(url), _settings(), source="t")
    logship.emit(12345, details=NOTE)  # type: ignore[arg-type]
    logship.emit("m" * 5000, step="s" * 200, details=NOTE)
    logship.emit("bad level", level="loud", category="nope", details=NOTE)  # type: ignore[arg-type]
    assert logship.flush(10)
    first, long, odd = events_of(url)
    assert [first.message, long.message] == ["12345", "m" * 2000]
    assert long.step == "s" * 64
    assert (odd.level, odd.category) == (LogLevel.info, LogCategory.workflow)


def test_the_buffer_bound_drops_counts_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    logship.reset(1.0)
    unreachable = f"redis://127.0.0.1:{closed_port()}/0"
    try:
        logship.configure_logship(
            _app(unreachable), _settings(log_buffer_max=100, log_batch_size=10), source="t"
        )
        with caplog.at_level(logging.WARNING, logger="roadmap_core.logship"):
            for i in range(250):
                logship.emit(f"e{i}", details=NOTE)
            # The shipper's thread counts the failure, then logs it: wait for the line too.
            wait_for(
                lambda: (
                    logship.stats().send_failures >= 1
                    and any("could not ship" in r.getMessage() for r in caplog.records)
                )
            )
        st = logship.stats()
        assert (st.emitted, st.shipped, st.pending, st.dropped) == (250, 0, 100, 150)
        assert any("dropped" in r.getMessage() for r in caplog.records)

        with caplog.at_level(logging.WARNING, logger="roadmap_core.logship"):
            assert logship.shutdown(0.2) is False
        st = logship.stats()
        assert (st.shipped, st.pending, st.dropped) == (0, 0, 250)
        assert any("100 events dropped" in r.getMessage() for r in caplog.records)
    finally:
        logship.reset(0.1)


def test_broker_outage_keeps_events_and_retries(own_redis: EmbeddedRedis) -> None:
    logship.reset(1.0)
    url = own_redis.url
    try:
        logship.configure_logship(_app(url), _settings(log_batch_size=50), source="t")
        own_redis.stop()
        for i in range(300):
            logship.emit(f"during outage {i}", details=NOTE)
        wait_for(lambda: logship.stats().send_failures >= 1)
        assert not logship.flush(0.2)
        assert logship.stats().pending == 300
        own_redis.start()  # same port, empty
        assert logship.flush(30)
        assert [e.message for e in events_of(url)] == [f"during outage {i}" for i in range(300)]
        st = logship.stats()
        assert (st.shipped, st.dropped, st.pending) == (300, 0, 0)
    finally:
        logship.reset(0.1)


def test_concurrent_emitters_lose_and_duplicate_nothing(url: str) -> None:
    logship.configure_logship(_app(url), _settings(log_batch_size=200), source="t")

    def work(n: int) -> None:
        for i in range(500):
            logship.emit(f"{n}:{i}", details=NOTE)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert logship.flush(10)
    messages = [e.message for e in events_of(url)]
    assert sorted(messages) == sorted(f"{n}:{i}" for n in range(4) for i in range(500))
    for n in range(4):  # each thread's events keep their order
        mine = [m for m in messages if m.startswith(f"{n}:")]
        assert mine == [f"{n}:{i}" for i in range(500)]


def test_a_forked_child_starts_empty_and_unconfigured(url: str) -> None:
    logship.configure_logship(_app(url), _settings(log_flush_interval_ms=60_000), source="t")
    logship.emit("parent before fork", details=NOTE)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            before = logship.stats()
            logship.emit("child event", details=NOTE)
            after = logship.stats()
            payload = json.dumps([before.as_dict(), after.as_dict()]).encode()
            os.write(write_end, payload)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        before, after = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert before == {
        "emitted": 0,
        "shipped": 0,
        "dropped": 0,
        "pending": 0,
        "send_failures": 0,
        "configured": False,
    }
    assert (after["emitted"], after["pending"]) == (1, 1)
    assert logship.flush(10)
    assert [e.message for e in events_of(url)] == ["parent before fork"]


def test_trace_ids_join_the_details_and_survive_truncation(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace, span = "ab" * 16, "cd" * 8
    monkeypatch.setattr(telemetry, "enabled", True)
    monkeypatch.setattr(telemetry, "current_ids", lambda: (trace, span))
    logship.configure_logship(_app(url), _settings(log_details_max_bytes=300), source="t")
    logship.emit("small", details=_llm_call(1))
    # 100 non-ASCII characters are 200 bytes: with the rest, over the limit in bytes only.
    logship.emit("wide", details=StepStartedDetails(errors=["é" * 100]))
    assert logship.flush(5)
    small, wide = events_of(url)
    assert parse_produced(small.details) == _llm_call(1).model_copy(
        update={"trace_id": trace, "span_id": span}
    )
    marker = parse_stored(wide.details)
    assert isinstance(marker, TruncatedDetails)
    assert (marker.original_kind, marker.trace_id, marker.span_id) == ("step_started", trace, span)
    assert marker.original_bytes > 300
