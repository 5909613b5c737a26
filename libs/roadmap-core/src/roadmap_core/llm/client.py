"""The LLM client: structured outputs over the official ``openai`` SDK, bounded.

One :class:`LLMClient` per process (build it after fork, on the loop that uses it).
A call to :meth:`LLMClient.structured`:

1. waits for a slot of the per-process concurrency budget (``LLM_CONCURRENCY``);
2. POSTs ``/chat/completions`` through the SDK with a strict JSON-schema
   ``response_format``;
   every HTTP request, SDK retries included, first passes the global Redis limiter
   (:mod:`roadmap_core.llm.transport`); the SDK retries 408/409/429/5xx/timeouts up
   to ``LLM_SDK_MAX_RETRIES`` times, honouring ``retry-after``;
3. reports the response's token usage and cost to the :class:`UsageSink` — also
   when the output is then rejected;
4. re-validates the JSON with the pydantic model and returns it, or raises a typed
   :class:`LLMError`.

Every HTTP attempt has the SDK timeout (``LLM_TIMEOUT_S``); the whole call also has
a deadline, :attr:`LLMClient.max_call_duration_s`, which time limits of tasks must
exceed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import httpx2
import openai
from openai import AsyncOpenAI, DefaultAsyncHttpxClient
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from roadmap_core.llm.errors import LLMError, LLMErrorReason, register_secret
from roadmap_core.llm.inflight import InFlightCap, RedisInFlightLimiter, fleet_cap
from roadmap_core.llm.observe import ObservedCall, observed_call
from roadmap_core.llm.ratelimit import RateLimiter, RedisRateLimiter
from roadmap_core.llm.schema import response_format, schema_name
from roadmap_core.llm.transport import (
    CallState,
    RateLimitedTransport,
    current_call,
    parse_retry_after,
)
from roadmap_core.llm.usage import (
    OUTCOME_OK,
    LLMCallRecord,
    UsageSink,
    add_to_scopes,
    cost_usd,
)
from roadmap_core.settings import LLMSettings

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
ChatMessage = dict[str, str]

# The SDK's exponential backoff never sleeps longer than this between retries.
SDK_MAX_BACKOFF_S: Final = 8.0
_NO_KEY: Final = "no-key"  # local OpenAI-compatible servers (Ollama, vLLM, the fake) ignore it


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a call is for: goes into every usage record."""

    step: str
    job_id: uuid.UUID | None = None
    item_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class StreamedText:
    """The whole answer of a streamed call, and the usage it reported (None: none came)."""

    text: str
    finish_reason: str | None
    usage: LLMCallRecord | None


DeltaHandler = Callable[[str], Awaitable[None]]


class LLMClient:
    def __init__(
        self,
        settings: LLMSettings,
        *,
        limiter: RateLimiter | None = None,
        in_flight: RedisInFlightLimiter | None = None,
        usage_sink: UsageSink | None = None,
        concurrency: int | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        """``transport`` replaces the network transport (tests use ``httpx2.MockTransport``)."""
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        if not key and settings.openai_base_url is None:
            raise ValueError("OPENAI_API_KEY is not set (or set OPENAI_BASE_URL to a local server)")
        register_secret(key)
        self.settings = settings
        self.usage_sink = usage_sink
        self.limiter = limiter
        self.in_flight = in_flight
        self.concurrency = concurrency or settings.llm_concurrency
        self._semaphore = asyncio.Semaphore(self.concurrency)
        timeout = httpx2.Timeout(settings.llm_timeout_s, connect=min(10.0, settings.llm_timeout_s))
        inner = transport or httpx2.AsyncHTTPTransport(
            limits=httpx2.Limits(
                max_connections=self.concurrency * 2,
                max_keepalive_connections=self.concurrency * 2,
            )
        )
        limited = RateLimitedTransport(
            inner,
            limiter,
            max_retry_after_s=settings.llm_max_retry_after_s,
            default_max_output=settings.llm_max_output_tokens,
            in_flight=in_flight,
        )
        self._http = DefaultAsyncHttpxClient(transport=limited, timeout=timeout)
        self._openai = AsyncOpenAI(
            api_key=key or _NO_KEY,
            base_url=settings.openai_base_url,
            timeout=timeout,
            max_retries=settings.llm_sdk_max_retries,
            http_client=self._http,
        )

    @classmethod
    def from_settings(
        cls,
        settings: LLMSettings,
        *,
        redis: Redis | None = None,
        usage_sink: UsageSink | None = None,
        caps: Sequence[InFlightCap] = (),
    ) -> LLMClient:
        """A client whose requests share the global limits through ``redis`` (if given): the
        rate (``LLM_RPM``/``LLM_TPM``), ``LLM_MAX_IN_FLIGHT`` when set, and ``caps`` (a
        worker replica's budget shared by its children)."""
        if redis is None:
            return cls(settings, usage_sink=usage_sink)
        in_flight = None
        if settings.llm_max_in_flight is not None:
            caps = (*caps, fleet_cap(settings.llm_max_in_flight))
        if caps:
            in_flight = RedisInFlightLimiter(
                redis,
                caps=caps,
                # One HTTP attempt holds a slot; a holder that died frees it after this.
                lease_s=settings.llm_timeout_s + 10.0,
                max_wait_s=settings.llm_rate_max_wait_s,
                outage_window_s=settings.infra_outage_window_s,
            )
        return cls(
            settings,
            limiter=RedisRateLimiter.from_settings(redis, settings),
            in_flight=in_flight,
            usage_sink=usage_sink,
        )

    @property
    def max_call_duration_s(self) -> float:
        """Upper bound of one :meth:`structured` call once it holds a concurrency slot
        (with room for one Redis outage at the global limiter)."""
        s = self.settings
        attempts = 1 + s.llm_sdk_max_retries
        sleeps = s.llm_sdk_max_retries * max(SDK_MAX_BACKOFF_S, s.llm_max_retry_after_s)
        outage = s.infra_outage_window_s if self.limiter is not None else 0.0
        # Each attempt may wait for a slot in flight, then for the rate limits: one budget.
        return attempts * (s.llm_rate_max_wait_s + s.llm_timeout_s) + sleeps + outage + 5.0

    async def aclose(self) -> None:
        await self._openai.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def structured(
        self,
        output: type[M],
        messages: Sequence[ChatMessage],
        *,
        ctx: CallContext,
        model: str | None = None,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
    ) -> M:
        """Ask for an instance of ``output`` and return it validated, or raise LLMError."""
        model_name = model or self.settings.llm_model
        with observed_call(model_name, step=ctx.step, job_id=ctx.job_id) as observed:
            return await self._structured(
                output, messages, ctx, model_name, max_output_tokens, temperature, observed
            )

    async def _structured(
        self,
        output: type[M],
        messages: Sequence[ChatMessage],
        ctx: CallContext,
        model_name: str,
        max_output_tokens: int | None,
        temperature: float | None,
        observed: ObservedCall,
    ) -> M:
        state = CallState()
        token = current_call.set(state)
        started = time.perf_counter()
        try:
            async with self._semaphore, asyncio.timeout(self.max_call_duration_s):
                observed.slot_acquired()
                # The SDK's generic POST rather than chat.completions.create: same retries,
                # timeouts, headers and typed errors, but the JSON body is sent as built
                # here. create() first runs a typed transform over every message, which
                # costs ~2 ms of CPU per call, more than all the rest of the client.
                response = await self._openai.post(
                    "/chat/completions",
                    cast_to=httpx2.Response,
                    body={
                        "model": model_name,
                        "messages": [dict(m) for m in messages],
                        "response_format": response_format(output),
                        "max_completion_tokens": (
                            max_output_tokens or self.settings.llm_max_output_tokens
                        ),
                        "temperature": (
                            self.settings.llm_temperature if temperature is None else temperature
                        ),
                    },
                )
        except TimeoutError:
            raise _deadline_error(state, self.max_call_duration_s) from None
        except openai.OpenAIError as exc:
            raise _map_sdk_error(exc) from None
        finally:
            current_call.reset(token)
        duration_ms = (time.perf_counter() - started) * 1000.0
        request_id = response.headers.get("x-request-id")
        try:
            completion = response.json()
        except ValueError:
            completion = None
        if not isinstance(completion, dict):
            raise LLMError(
                LLMErrorReason.malformed_output,
                "response body is not a chat completion",
                request_id=request_id,
            )
        value, error = _interpret(completion, output, request_id)
        await self._report(
            completion, model_name, state, ctx, output, duration_ms, error, request_id, observed
        )
        if error is not None:
            raise error
        assert value is not None
        return value

    async def stream_text(
        self,
        messages: Sequence[ChatMessage],
        *,
        ctx: CallContext,
        on_delta: DeltaHandler,
        model: str | None = None,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
    ) -> StreamedText:
        """Ask for free text with ``stream=True``; ``on_delta`` gets each piece as it arrives.

        The same budget as :meth:`structured` (a concurrency slot, the global limiter on
        the request, the SDK's retries before the first byte, the call deadline). Usage
        comes in the stream's last chunk (``stream_options.include_usage``) and is
        accounted like any call. A stream that breaks after its first byte is not
        retried here: the pieces already handed out cannot be taken back.
        """
        model_name = model or self.settings.llm_model
        with observed_call(model_name, step=ctx.step, job_id=ctx.job_id) as observed:
            state = CallState()
            token = current_call.set(state)
            started = time.perf_counter()
            parts: list[str] = []
            usage: dict[str, Any] | None = None
            answered = model_name
            finish: str | None = None
            request_id: str | None = None
            try:
                async with self._semaphore, asyncio.timeout(self.max_call_duration_s):
                    observed.slot_acquired()
                    stream = await self._openai.chat.completions.create(
                        model=model_name,
                        messages=cast(Any, [dict(m) for m in messages]),
                        stream=True,
                        stream_options={"include_usage": True},
                        max_completion_tokens=(
                            max_output_tokens or self.settings.llm_max_output_tokens
                        ),
                        temperature=(
                            self.settings.llm_temperature if temperature is None else temperature
                        ),
                    )
                    request_id = stream.response.headers.get("x-request-id")
                    async with stream:
                        async for chunk in stream:
                            if chunk.model:
                                answered = chunk.model
                            if chunk.usage is not None:
                                usage = chunk.usage.model_dump()
                            for choice in chunk.choices:
                                if choice.finish_reason:
                                    finish = choice.finish_reason
                                piece = choice.delta.content
                                if piece:
                                    parts.append(piece)
                                    await on_delta(piece)
            except TimeoutError:
                raise _deadline_error(state, self.max_call_duration_s) from None
            except openai.OpenAIError as exc:
                raise _map_sdk_error(exc) from None
            finally:
                current_call.reset(token)
            record = None
            if usage is not None:
                record = self._record(
                    usage,
                    answered,
                    model_name,
                    ctx,
                    (time.perf_counter() - started) * 1000.0,
                    OUTCOME_OK,
                    request_id,
                    None,
                )
                await self._account(record, state, observed)
            return StreamedText("".join(parts), finish, record)

    async def _report(
        self,
        completion: dict[str, Any],
        requested_model: str,
        state: CallState,
        ctx: CallContext,
        output: type[BaseModel],
        duration_ms: float,
        error: LLMError | None,
        request_id: str | None,
        observed: ObservedCall,
    ) -> None:
        usage = completion.get("usage")
        if not isinstance(usage, dict):
            return
        answered = completion.get("model")
        record = self._record(
            usage,
            answered if isinstance(answered, str) and answered else requested_model,
            requested_model,
            ctx,
            duration_ms,
            OUTCOME_OK if error is None else str(error.reason),
            request_id,
            schema_name(output),
        )
        await self._account(record, state, observed)

    def _record(
        self,
        usage: dict[str, Any],
        answered_model: str,
        requested_model: str,
        ctx: CallContext,
        duration_ms: float,
        outcome: str,
        request_id: str | None,
        schema: str | None,
    ) -> LLMCallRecord:
        prompt_tokens = _int(usage.get("prompt_tokens"))
        completion_tokens = _int(usage.get("completion_tokens"))
        details = usage.get("prompt_tokens_details")
        cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
        prices = self.settings.llm_prices
        price_model = answered_model if answered_model in prices else requested_model
        return LLMCallRecord(
            step=ctx.step,
            model=answered_model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost_usd(
                price_model, prompt_tokens, completion_tokens, prices, cached_tokens=cached
            ),
            duration_ms=round(duration_ms, 3),
            job_id=ctx.job_id,
            item_id=ctx.item_id,
            outcome=outcome,
            request_id=request_id,
            schema=schema,
            cached_tokens=min(cached, prompt_tokens),
        )

    async def _account(
        self, record: LLMCallRecord, state: CallState, observed: ObservedCall
    ) -> None:
        last = state.attempts[-1] if state.attempts else None
        if self.limiter is not None and last is not None and last.reservation is not None:
            await self.limiter.settle(last.reservation, record.total_tokens)
        observed.usage(record)
        add_to_scopes(record)
        if self.usage_sink is not None:
            try:
                await self.usage_sink.record(record)
            except Exception:
                # Losing one usage row must not throw away an answer that was paid for.
                log.exception("usage sink failed for step %s", record.step)


def _strip_fences(content: str) -> str:
    text = content.strip()
    if text.startswith("```"):
        first_newline = text.find("\n")
        text = text[first_newline + 1 :] if first_newline != -1 else ""
        if text.rstrip().endswith("```"):
            text = text.rstrip()[:-3]
    return text.strip()


def _summarise_validation(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _interpret(
    completion: dict[str, Any], output: type[M], request_id: str | None
) -> tuple[M | None, LLMError | None]:
    def fail(reason: LLMErrorReason, message: str) -> tuple[M | None, LLMError | None]:
        return None, LLMError(reason, message, request_id=request_id)

    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return fail(LLMErrorReason.malformed_output, "completion has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    finish = choice.get("finish_reason")
    if message.get("refusal"):
        return fail(LLMErrorReason.refusal, "the model refused to answer")
    if finish == "content_filter":
        return fail(LLMErrorReason.refusal, "the answer was stopped by a content filter")
    if finish == "length":
        return fail(LLMErrorReason.truncated, "the answer hit the output token limit")
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        return fail(LLMErrorReason.malformed_output, "the answer has no content")
    try:
        data = json.loads(_strip_fences(content))
    except ValueError:
        return fail(LLMErrorReason.malformed_output, "the answer is not valid JSON")
    try:
        return output.model_validate(data), None
    except ValidationError as exc:
        return fail(
            LLMErrorReason.invalid_schema,
            f"{output.__name__} rejected: {_summarise_validation(exc)}",
        )


def _deadline_error(state: CallState, deadline_s: float) -> LLMError:
    last = state.attempts[-1] if state.attempts else None
    if last is not None and last.status == 429:
        return LLMError(
            LLMErrorReason.rate_limited,
            f"still rate limited after {deadline_s:g}s",
            status_code=429,
            retry_after_s=last.retry_after_s,
        )
    return LLMError(LLMErrorReason.timeout, f"call exceeded its deadline of {deadline_s:g}s")


def _map_sdk_error(exc: openai.OpenAIError) -> LLMError:
    if isinstance(exc, openai.APITimeoutError):
        return LLMError(LLMErrorReason.timeout, "request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return LLMError(LLMErrorReason.connection, "could not reach the LLM endpoint")
    if isinstance(exc, openai.APIStatusError):
        return _map_status_error(exc)
    if isinstance(exc, openai.APIResponseValidationError):
        return LLMError(LLMErrorReason.malformed_output, "response body is not a chat completion")
    return LLMError(LLMErrorReason.unexpected, type(exc).__name__)


def _map_status_error(exc: openai.APIStatusError) -> LLMError:
    status = exc.status_code
    code = exc.code or ""
    detail = f"HTTP {status}" + (f" ({code})" if code else "")
    common: dict[str, Any] = {"status_code": status, "request_id": exc.request_id}
    if status == 429:
        if code == "insufficient_quota":
            return LLMError(LLMErrorReason.quota_exceeded, detail, **common)
        return LLMError(
            LLMErrorReason.rate_limited,
            detail,
            retry_after_s=parse_retry_after(exc.response.headers),
            **common,
        )
    if status in (401, 403):
        return LLMError(LLMErrorReason.auth, detail, **common)
    if status == 408:
        return LLMError(LLMErrorReason.timeout, detail, **common)
    if status == 409 or status >= 500:
        return LLMError(LLMErrorReason.server_error, detail, **common)
    return LLMError(LLMErrorReason.bad_request, detail, **common)
