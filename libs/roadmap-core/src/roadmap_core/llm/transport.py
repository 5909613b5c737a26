"""An HTTP transport that puts every request to the LLM through the global limiter.

It sits under the ``openai`` SDK, so the SDK's own retries (``max_retries``) are
admitted by the limiter one by one like first attempts: retries cannot push the
fleet over the configured rate. It also keeps a per-call log of attempts (status,
``retry-after``) for :class:`roadmap_core.llm.client.LLMClient`, and tells the SDK
not to sleep on a ``retry-after`` longer than ``max_retry_after_s`` (via the SDK's
``x-should-retry`` header) so such a call fails fast as ``rate_limited`` and the
task is retried later instead of holding a worker slot.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx2

from roadmap_core.llm.inflight import RedisInFlightLimiter
from roadmap_core.llm.ratelimit import RateLimiter, Reservation, estimate_tokens
from roadmap_core.metrics.llm import llm_metrics


@dataclass(slots=True)
class Attempt:
    status: int | None
    retry_after_s: float | None
    reservation: Reservation | None
    prompt_estimate: int


@dataclass(slots=True)
class CallState:
    """What the transport saw during one logical call (the SDK may send several requests)."""

    attempts: list[Attempt] = field(default_factory=list)


current_call: ContextVar[CallState | None] = ContextVar("roadmap_llm_call", default=None)


def parse_retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds to wait according to ``retry-after-ms`` / ``retry-after`` (seconds or HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        return max(0.0, email.utils.mktime_tz(parsed) - time.time())


_MAX_TOKENS = re.compile(rb'"max(?:_completion)?_tokens"\s*:\s*(\d+)')


def estimate_request_tokens(body: bytes, default_max_output: int) -> tuple[int, int]:
    """(prompt estimate, output budget) of a chat-completions request body.

    Estimated from the raw JSON (messages, schema and a little framing): slightly
    above the real prompt, which is the safe side for a limiter, and cheap.
    """
    prompt = estimate_tokens(body.decode("utf-8", "replace"))
    match = _MAX_TOKENS.search(body)
    return prompt, int(match.group(1)) if match else default_max_output


class RateLimitedTransport(httpx2.AsyncBaseTransport):
    def __init__(
        self,
        inner: httpx2.AsyncBaseTransport,
        limiter: RateLimiter | None,
        *,
        max_retry_after_s: float,
        default_max_output: int,
        in_flight: RedisInFlightLimiter | None = None,
    ) -> None:
        self._inner = inner
        self._limiter = limiter
        self._in_flight = in_flight
        self._max_retry_after_s = max_retry_after_s
        self._default_max_output = default_max_output

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            body = request.content
        except httpx2.RequestNotRead:
            body = b""
        prompt, out = estimate_request_tokens(body, self._default_max_output)
        metrics = llm_metrics()
        waited = time.perf_counter()
        # The in-flight slot first, the rate admission last: nothing may wait between
        # admission and sending, or the request would reach the provider later than the
        # rate limiter's margin allows. Both waits share one budget (``LLM_RATE_MAX_WAIT_S``
        # per attempt), which is what a call's deadline allows for.
        slot, deadline = None, None
        if self._in_flight is not None:
            deadline = time.monotonic() + self._in_flight.max_wait_s
            slot = await self._in_flight.acquire()
        try:
            reservation = (
                await self._limiter.acquire(prompt + out, deadline=deadline)
                if self._limiter
                else None
            )
            metrics.rate_wait.observe(time.perf_counter() - waited)
            metrics.in_flight.inc()
            try:
                response = await self._inner.handle_async_request(request)
            except BaseException:
                metrics.in_flight.dec()
                raise
        except BaseException:
            if slot is not None and self._in_flight is not None:
                await self._in_flight.release(slot)
            raise
        # In flight until its body is read (or the stream closed): then the slot is free.
        releasing = _Releasing(response.stream, self._in_flight, slot)
        response.stream = releasing
        retry_after = parse_retry_after(response.headers)
        if response.status_code >= 400 and reservation is not None and self._limiter is not None:
            try:
                # No completion was generated: the prompt is all the provider may count.
                await self._limiter.settle(reservation, prompt)
            except BaseException:
                # Nobody will read this response: end its time in flight, or its slot stays
                # taken until the lease runs out.
                await releasing.aclose()
                raise
        state = current_call.get()
        if state is not None:
            state.attempts.append(Attempt(response.status_code, retry_after, reservation, prompt))
        if (
            response.status_code == 429
            and retry_after is not None
            and retry_after > self._max_retry_after_s
        ):
            response.headers["x-should-retry"] = "false"
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Releasing(httpx2.AsyncByteStream):
    """A response body that, once read or closed, ends the request's time in flight."""

    def __init__(
        self,
        inner: httpx2.SyncByteStream | httpx2.AsyncByteStream,
        in_flight: RedisInFlightLimiter | None,
        slot: str | None,
    ) -> None:
        if not isinstance(inner, httpx2.AsyncByteStream):
            raise TypeError("the LLM transport must return an async body")
        self._inner = inner
        self._in_flight = in_flight
        self._slot = slot
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if not self._done:
                self._done = True
                llm_metrics().in_flight.dec()
                if self._slot is not None and self._in_flight is not None:
                    await self._in_flight.release(self._slot)
