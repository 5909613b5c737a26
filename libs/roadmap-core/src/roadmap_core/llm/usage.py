"""Token usage and cost of LLM calls, and where they are reported.

Every HTTP response that carries ``usage`` becomes one :class:`LLMCallRecord`
(including responses whose output we reject: the tokens were paid for), handed to
the client's :class:`UsageSink`. The worker's sink writes ``llm_calls`` rows and
adds to the job's totals.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Protocol

from roadmap_core.settings import ModelPrice

OUTCOME_OK: Final = "ok"
_MILLION: Final = Decimal(1_000_000)
_COST_QUANTUM: Final = Decimal("0.000001")  # matches the Numeric(14, 6) money columns


@dataclass(frozen=True, slots=True)
class LLMCallRecord:
    """One HTTP response from the LLM endpoint that reported token usage."""

    step: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    duration_ms: float
    job_id: uuid.UUID | None
    item_id: uuid.UUID | None
    # "ok", or the LLMErrorReason that made us reject the output (malformed_output…).
    outcome: str
    request_id: str | None = None
    schema: str | None = None
    # Of prompt_tokens, those served from the provider's prompt cache (cheaper).
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UsageSink(Protocol):
    async def record(self, call: LLMCallRecord) -> None: ...


@dataclass(slots=True)
class UsageTotals:
    """Sums of the records reported while a :func:`usage_scope` was active."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = field(default_factory=lambda: Decimal(0))

    def add(self, call: LLMCallRecord) -> None:
        self.calls += 1
        self.prompt_tokens += call.prompt_tokens
        self.completion_tokens += call.completion_tokens
        self.cost_usd += call.cost_usd

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


_scopes: ContextVar[tuple[UsageTotals, ...]] = ContextVar("roadmap_llm_usage_scopes", default=())


@contextmanager
def usage_scope() -> Iterator[UsageTotals]:
    """Collect the usage of every call made in this context (tasks it spawns included)."""
    totals = UsageTotals()
    token = _scopes.set((*_scopes.get(), totals))
    try:
        yield totals
    finally:
        _scopes.reset(token)


def add_to_scopes(call: LLMCallRecord) -> None:
    for totals in _scopes.get():
        totals.add(call)


def price_for(model: str, prices: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """The price of ``model``: exact name, else the longest table key it starts with.

    Providers answer with dated snapshots (``gpt-4o-mini-2024-07-18``) of the names
    we configure, so a prefix match prices them as their family.
    """
    if model in prices:
        return prices[model]
    candidates = [name for name in prices if model.startswith(name + "-")]
    return prices[max(candidates, key=len)] if candidates else None


def cost_usd(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    prices: Mapping[str, ModelPrice],
    *,
    cached_tokens: int = 0,
) -> Decimal:
    """USD cost from a per-million-token price table; unknown models cost 0.

    ``cached_tokens`` (part of ``prompt_tokens``) are charged at the model's cached-input
    price when it has one.
    """
    price = price_for(model, prices)
    if price is None:
        return Decimal(0).quantize(_COST_QUANTUM)
    cached = min(max(0, cached_tokens), prompt_tokens)
    cached_price = price.input if price.cached_input is None else price.cached_input
    total = (
        Decimal(prompt_tokens - cached) * price.input
        + Decimal(cached) * cached_price
        + Decimal(completion_tokens) * price.output
    ) / _MILLION
    return total.quantize(_COST_QUANTUM)


class CollectingSink:
    """Keeps records in memory (CLI runs, tests)."""

    def __init__(self) -> None:
        self.records: list[LLMCallRecord] = []

    async def record(self, call: LLMCallRecord) -> None:
        self.records.append(call)
