"""The client through the real ``openai`` SDK over an in-memory transport (no network)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from redis.asyncio import Redis

from roadmap_core.domain import IntentAnalysis
from roadmap_core.llm import (
    CallContext,
    CollectingSink,
    InFlightCap,
    LLMClient,
    LLMError,
    LLMErrorReason,
    RedisInFlightLimiter,
    RedisRateLimiter,
    Reservation,
    replica_cap,
)
from roadmap_core.llm.transport import RateLimitedTransport
from roadmap_core.settings import LLMSettings

INTENT = {
    "topic": "Rust",
    "domain": "Software",
    "goals": ["ship"],
    "key_skills": [],
    "assumed_background": "",
    "notes": "",
}
MESSAGES = [{"role": "user", "content": "Goal: learn Rust"}]


def completion(
    content: str | None, *, finish: str = "stop", refusal: str | None = None
) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
    }


class Recording:
    """Wraps the real limiter to see each acquire/settle."""

    def __init__(self, inner: RedisRateLimiter) -> None:
        self.inner = inner
        self.acquired: list[Reservation] = []
        self.settled: list[tuple[Reservation, int]] = []

    async def acquire(self, tokens: int, *, deadline: float | None = None) -> Reservation:
        reservation = await self.inner.acquire(tokens, deadline=deadline)
        self.acquired.append(reservation)
        return reservation

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        self.settled.append((reservation, actual_tokens))
        await self.inner.settle(reservation, actual_tokens)


def make_client(
    handler: Callable[[httpx2.Request], Any],
    *,
    limiter: Any = None,
    sink: CollectingSink | None = None,
    **settings: Any,
) -> LLMClient:
    base: dict[str, Any] = {"openai_base_url": "http://llm.invalid/v1", "llm_sdk_max_retries": 2}
    return LLMClient(
        LLMSettings(**(base | settings)),
        limiter=limiter,
        usage_sink=sink,
        transport=httpx2.MockTransport(handler),
    )


def scripted(
    *responses: httpx2.Response,
) -> tuple[Callable[[httpx2.Request], httpx2.Response], list[httpx2.Request]]:
    seen: list[httpx2.Request] = []
    queue = list(responses)

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler, seen


async def test_every_sdk_retry_passes_the_global_limiter_and_usage_is_settled(redis: Redis) -> None:
    limiter = Recording(
        RedisRateLimiter(redis, rpm=1000, tpm=10**6, key_prefix=f"t:{uuid.uuid4()}")
    )
    handler, seen = scripted(
        httpx2.Response(500, json={"error": {"message": "boom"}}, headers={"retry-after-ms": "10"}),
        httpx2.Response(429, json={"error": {"message": "slow"}}, headers={"retry-after-ms": "10"}),
        httpx2.Response(200, json=completion(json.dumps(INTENT))),
    )
    sink = CollectingSink()
    async with make_client(handler, limiter=limiter, sink=sink) as llm:
        job = uuid.uuid4()
        out = await llm.structured(
            IntentAnalysis, MESSAGES, ctx=CallContext("intent_analysis", job_id=job)
        )
    assert out.topic == "Rust"
    assert len(seen) == 3
    assert len(limiter.acquired) == 3
    body = json.loads(seen[0].content)
    assert body["response_format"]["json_schema"]["name"] == "IntentAnalysis"
    assert body["max_completion_tokens"] == 4096
    # Failed attempts settle to their prompt estimate, the answer to its real usage.
    assert limiter.settled[-1] == (limiter.acquired[-1], 1500)
    assert len(limiter.settled) == 3
    [rec] = sink.records
    assert (rec.step, rec.job_id, rec.outcome, rec.schema) == (
        "intent_analysis",
        job,
        "ok",
        "IntentAnalysis",
    )
    assert (rec.prompt_tokens, rec.completion_tokens) == (1000, 500)
    # gpt-4o-mini-2024-07-18 priced as gpt-4o-mini: 1000*0.15/1M + 500*0.60/1M
    assert rec.cost_usd == Decimal("0.000450")


async def test_a_call_the_global_limiter_cannot_admit_in_time_fails_retryable(redis: Redis) -> None:
    limiter = RedisRateLimiter(
        redis, rpm=1, tpm=10**6, window_s=60, max_wait_s=0.1, key_prefix=f"t:{uuid.uuid4()}"
    )
    handler, seen = scripted(httpx2.Response(200, json=completion(json.dumps(INTENT))))
    async with make_client(handler, limiter=limiter) as llm:
        await llm.structured(IntentAnalysis, MESSAGES, ctx=CallContext("s"))
        with pytest.raises(LLMError) as info:
            await llm.structured(IntentAnalysis, MESSAGES, ctx=CallContext("s"))
    assert info.value.reason is LLMErrorReason.rate_limited
    assert info.value.retryable
    assert info.value.retry_after_s is not None
    assert 50 < info.value.retry_after_s <= 60
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("response", "reason", "retryable"),
    [
        (completion(None, refusal="no"), LLMErrorReason.refusal, False),
        (completion('{"topic": "Ru', finish="length"), LLMErrorReason.truncated, False),
        (completion("not json"), LLMErrorReason.malformed_output, True),
        (completion(json.dumps({"topic": "x"})), LLMErrorReason.invalid_schema, True),
        (completion(None, finish="content_filter"), LLMErrorReason.refusal, False),
    ],
)
async def test_rejected_output_is_typed_and_still_paid_for(
    response: dict[str, Any], reason: LLMErrorReason, retryable: bool
) -> None:
    handler, seen = scripted(httpx2.Response(200, json=response))
    sink = CollectingSink()
    async with make_client(handler, sink=sink) as llm:
        with pytest.raises(LLMError) as info:
            await llm.structured(IntentAnalysis, MESSAGES, ctx=CallContext("s"))
    assert (info.value.reason, info.value.retryable) == (reason, retryable)
    assert len(seen) == 1
    assert [r.outcome for r in sink.records] == [reason.value]
    assert sink.records[0].cost_usd > 0


async def test_fenced_json_is_accepted() -> None:
    handler, _ = scripted(
        httpx2.Response(200, json=completion("```json\n" + json.dumps(INTENT) + "\n```"))
    )
    async with make_client(handler) as llm:
        assert (
            await llm.structured(IntentAnalysis, MESSAGES, ctx=CallContext("s"))
        ).domain == "Software"


@pytest.mark.parametrize(
    ("status", "body", "reason", "retryable"),
    [
        (
            400,
            {"error": {"message": "bad", "code": "invalid_value"}},
            LLMErrorReason.bad_request,
            False,
        ),
        (
            401,
            {"error": {"message": "Incorrect API key sk-live-abcdefgh12345"}},
            LLMErrorReason.auth,
            False,
        ),
        (404, {"error": {"message": "no such model"}}, LLMErrorReason.bad_request, False),
        (
            429,
            {"error": {"message": "quota", "code": "insufficient_quota"}},
            LLMErrorReason.quota_exceeded,
            False,
        ),
    ],
)
async def test_status_errors_that_are_not_retried(
    status: int, body: dict[str, Any], reason: LLMErrorReason, retryable: bool
) -> None:
    headers = {"x-should-retry": "false"} if status == 429 else {}
    handler, seen = scripted(httpx2.Response(status, json=body, headers=headers))
    async with make_client(handler, openai_api_key="sk-live-abcdefgh12345") as llm:
        with pytest.raises(LLMError) as info:
            await llm.structured(IntentAnalysis, MESSAGES, ctx=CallContext("s"))
    assert (info.value.reason, info.value.retryable, info.value.status_code) == (
        reason,
        retryable,
        status,
    )
    assert len(seen) == 1
    assert "sk-live-abcdefgh12345" not in str(info.value) + repr(info.value.as_dict())
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


async def test_a_long_retry_after_fails_fast_with_the_hint() -> None:
    handler, seen = scripted(
        httpx2.Response(429, json={"error": {"message": "slow"}}, headers={"retry-after": "90"})
    )
    async with make_client(handler, llm_max_retry_after_s=5) as llm:
        with pytest.raises(LLMError) as info:
            await llm.structured(IntentAnalysis, MESSAGES, ctx=CallContext("s"))
    assert info.value.reason is LLMErrorReason.rate_limited
    assert info.value.retryable
    assert info.value.retry_after_s == 90
    assert len(seen) == 1


async def test_per_process_concurrency_budget() -> None:
    active = peak = 0

    async def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return httpx2.Response(200, json=completion(json.dumps(INTENT)))

    async with make_client(handler, llm_concurrency=2) as llm:
        await asyncio.gather(
            *(llm.structured(IntentAnalysis, MESSAGES, ctx=CallContext("s")) for _ in range(7))
        )
    assert peak == 2


def test_a_key_or_a_base_url_is_required() -> None:
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        LLMClient(LLMSettings())


async def test_call_deadline_covers_every_attempt() -> None:
    settings = LLMSettings(
        openai_base_url="http://llm.invalid/v1",
        llm_timeout_s=10,
        llm_sdk_max_retries=2,
        llm_rate_max_wait_s=5,
        llm_max_retry_after_s=30,
    )
    async with LLMClient(settings) as llm:
        assert llm.max_call_duration_s >= 3 * (10 + 5) + 2 * 30


async def test_a_slot_in_flight_and_the_rate_share_one_wait_budget(redis: Redis) -> None:
    # The call's deadline allows one wait per attempt: taking a slot in flight does not
    # add a second (before, it doubled the deadline with a replica's shared slots).
    settings = LLMSettings(openai_base_url="http://llm.invalid/v1", llm_rate_max_wait_s=5)
    async with (
        LLMClient.from_settings(settings, redis=redis) as plain,
        LLMClient.from_settings(settings, redis=redis, caps=(replica_cap("t", 4),)) as shared,
    ):
        assert shared.in_flight is not None
        assert shared.max_call_duration_s == plain.max_call_duration_s
    # The rate wait gives up at the deadline the in-flight wait started, not a budget later.
    rates = RedisRateLimiter(
        redis, rpm=60, tpm=10**6, window_s=1.0, max_wait_s=30, key_prefix=f"t:{uuid.uuid4()}"
    )
    await rates.acquire(1)  # the window's one request
    with pytest.raises(LLMError) as info:
        await rates.acquire(1, deadline=time.monotonic() + 0.1)
    assert info.value.reason is LLMErrorReason.rate_limited


class FailingSettle(Recording):
    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        raise OSError("the settle's connection dropped")


async def test_a_refused_request_whose_settle_fails_still_frees_its_slot(redis: Redis) -> None:
    key = f"t:{uuid.uuid4()}:inflight"
    in_flight = RedisInFlightLimiter(
        redis, caps=(InFlightCap(key, 1, "LLM_MAX_IN_FLIGHT"),), lease_s=60, max_wait_s=1
    )
    limiter = FailingSettle(
        RedisRateLimiter(redis, rpm=1000, tpm=10**6, key_prefix=f"t:{uuid.uuid4()}")
    )
    transport = RateLimitedTransport(
        httpx2.MockTransport(lambda _: httpx2.Response(500, json={"error": {"message": "x"}})),
        limiter,
        max_retry_after_s=30,
        default_max_output=100,
        in_flight=in_flight,
    )
    request = httpx2.Request("POST", "http://llm.invalid/v1/chat/completions", content=b"{}")
    with pytest.raises(OSError, match="settle"):
        await transport.handle_async_request(request)
    # Closed on the way out: the slot is back at once, not when its lease runs out.
    assert await redis.zcard(key) == 0
