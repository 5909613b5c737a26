from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from roadmap_core.llm import LLMCallRecord, cost_usd, price_for, usage_scope
from roadmap_core.llm.usage import add_to_scopes
from roadmap_core.settings import DEFAULT_PRICES, LLMSettings, ModelPrice


def record(prompt: int, completion: int, cost: str = "0.001") -> LLMCallRecord:
    return LLMCallRecord(
        step="s",
        model="m",
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=Decimal(cost),
        duration_ms=1.0,
        job_id=None,
        item_id=None,
        outcome="ok",
    )


def test_cost_uses_the_per_million_price_table() -> None:
    # gpt-4o-mini: $0.15 / 1M input, $0.60 / 1M output
    assert cost_usd("gpt-4o-mini", 1_000_000, 0, DEFAULT_PRICES) == Decimal("0.150000")
    assert cost_usd("gpt-4o-mini", 1234, 567, DEFAULT_PRICES) == Decimal("0.000525")
    assert cost_usd("gpt-4o", 2000, 1000, DEFAULT_PRICES) == Decimal("0.015000")


def test_dated_snapshots_are_priced_as_their_family_and_unknown_models_cost_nothing() -> None:
    assert price_for("gpt-4o-mini-2024-07-18", DEFAULT_PRICES) == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-08-06", DEFAULT_PRICES) == DEFAULT_PRICES["gpt-4o"]
    assert price_for("llama3.1:8b", DEFAULT_PRICES) is None
    assert cost_usd("llama3.1:8b", 10_000, 10_000, DEFAULT_PRICES) == Decimal("0")


def test_price_table_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PRICES", '{"my-model": {"input": "1.00", "output": "3.00"}}')
    prices = LLMSettings().llm_prices
    assert prices == {"my-model": ModelPrice(input=Decimal("1.00"), output=Decimal("3.00"))}
    assert cost_usd("my-model", 500_000, 100_000, prices) == Decimal("0.800000")


async def test_usage_scopes_nest_and_follow_spawned_tasks() -> None:
    async def child() -> None:
        add_to_scopes(record(1, 2))

    with usage_scope() as outer:
        add_to_scopes(record(10, 20))
        with usage_scope() as inner:
            await asyncio.gather(child(), child())
    add_to_scopes(record(1000, 1000))
    assert (inner.calls, inner.prompt_tokens, inner.completion_tokens) == (2, 2, 4)
    assert (outer.calls, outer.total_tokens) == (3, 36)
    assert outer.cost_usd == Decimal("0.003")


def test_cached_input_tokens_are_priced_at_the_cached_rate() -> None:
    # gpt-4o-mini: 0.15 input, 0.075 cached input, 0.60 output (USD per million).
    assert cost_usd("gpt-4o-mini", 1_000_000, 0, DEFAULT_PRICES, cached_tokens=1_000_000) == (
        Decimal("0.075000")
    )
    assert cost_usd("gpt-4o-mini", 2_000_000, 1_000_000, DEFAULT_PRICES, cached_tokens=500_000) == (
        Decimal("0.225000") + Decimal("0.037500") + Decimal("0.600000")
    )
    # More cached than sent is clamped; a model without a cached price charges full input.
    assert cost_usd("gpt-4o", 1000, 0, DEFAULT_PRICES, cached_tokens=5000) == Decimal("0.001250")
    no_cache = {"m": ModelPrice(input=Decimal("1"), output=Decimal("2"))}
    assert cost_usd("m", 1_000_000, 0, no_cache, cached_tokens=1_000_000) == Decimal("1.000000")
