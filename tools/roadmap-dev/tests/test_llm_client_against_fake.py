"""roadmap_core's LLM client through the real openai SDK against the fake LLM over HTTP."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from roadmap_core.domain import (
    CheckedResourceList,
    ContentKind,
    IntentAnalysis,
    Quiz,
    RoadmapRequest,
    Tutorial,
)
from roadmap_core.llm import (
    CallContext,
    CollectingSink,
    LLMClient,
    LLMError,
    LLMErrorReason,
    render_messages,
)
from roadmap_core.pipeline import (
    PlanLimits,
    analyze_intent,
    concept_contexts,
    design_curriculum,
    generate_content,
    validate_framework,
)
from roadmap_core.settings import LLMSettings, ModelPrice
from roadmap_dev.fake_llm import FakeConfig, FakeLLM, fake_llm_server
from roadmap_dev.fake_search import loopback_search

CJK = re.compile(r"[\u4e00-\u9fff]")
REQ = RoadmapRequest(goal="Learn Kubernetes operations", level="beginner", weekly_hours=5, weeks=8)
API_KEY = "sk-test-do-not-leak-0123456789"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with fake_llm_server(seed=11) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake: FakeLLM) -> None:
    fake.configure(**FakeConfig(seed=11).model_dump(mode="json"))
    fake.reset()


def settings(fake: FakeLLM, **kw: Any) -> LLMSettings:
    base: dict[str, Any] = {
        "openai_base_url": fake.base_url,
        "openai_api_key": API_KEY,
        "llm_sdk_max_retries": 2,
        "llm_timeout_s": 5.0,
    }
    return LLMSettings(**(base | kw))


async def test_every_structured_output_validates_and_is_recorded(fake: FakeLLM) -> None:
    sink = CollectingSink()
    job, item = uuid.uuid4(), uuid.uuid4()
    search = loopback_search(fake.base_url)
    async with LLMClient(settings(fake), usage_sink=sink) as llm:
        intent = await analyze_intent(llm, REQ, job_id=job)
        framework = await design_curriculum(llm, REQ, intent, PlanLimits(), job_id=job)
        context = next(iter(concept_contexts(framework).values()))
        try:
            contents = [
                await generate_content(
                    llm, kind, REQ, context, job_id=job, item_id=item, search=search
                )
                for kind in ContentKind
            ]
        finally:
            await search.aclose()
    assert intent.topic == "Kubernetes operations"
    assert validate_framework(framework, REQ, PlanLimits()) == []
    assert [type(c) for c in contents] == [Tutorial, CheckedResourceList, Quiz]
    assert [r.step for r in sink.records] == [
        "intent_analysis",
        "curriculum_design",
        "content_generation.tutorial",
        "content_generation.resources",
        "content_generation.quiz",
    ]
    assert all(r.job_id == job and r.outcome == "ok" for r in sink.records)
    assert [r.item_id for r in sink.records[2:]] == [item] * 3
    assert [e["schema"] for e in fake.requests()] == [
        "IntentAnalysis",
        "Framework",
        "Tutorial",
        "ResourceList",
        "Quiz",
    ]


async def test_cost_comes_from_the_price_table_and_the_reported_usage(fake: FakeLLM) -> None:
    sink = CollectingSink()
    prices = {"gpt-4o-mini": ModelPrice(input=Decimal("2"), output=Decimal("8"))}
    async with LLMClient(settings(fake, llm_prices=prices), usage_sink=sink) as llm:
        await analyze_intent(llm, REQ)
    [record] = sink.records
    [logged] = fake.requests()
    assert (record.prompt_tokens, record.completion_tokens) == (
        logged["prompt_tokens"],
        logged["completion_tokens"],
    )
    expected = (Decimal(record.prompt_tokens) * 2 + Decimal(record.completion_tokens) * 8) / 10**6
    assert record.cost_usd == expected.quantize(Decimal("0.000001"))
    assert record.cost_usd > 0


async def test_a_chinese_request_gets_chinese_text(fake: FakeLLM) -> None:
    req = REQ.model_copy(update={"language": "zh", "goal": "学习 Kubernetes 运维"})
    async with LLMClient(settings(fake)) as llm:
        framework = await design_curriculum(llm, req, None, PlanLimits())
        context = next(iter(concept_contexts(framework).values()))
        tutorial = await generate_content(llm, ContentKind.tutorial, req, context)
        quiz = await generate_content(llm, ContentKind.quiz, req, context)
    assert CJK.search(framework.title)
    assert all(CJK.search(c.title) for c in framework.concepts())
    assert isinstance(tutorial, Tutorial)
    assert CJK.search(tutorial.markdown)
    assert isinstance(quiz, Quiz)
    assert all(CJK.search(q.prompt) for q in quiz.questions)


async def call(llm: LLMClient) -> IntentAnalysis:
    return await llm.structured(
        IntentAnalysis,
        render_messages("intent", language="en", request=REQ),
        ctx=CallContext("intent_analysis"),
    )


async def test_429_retry_after_is_honoured(fake: FakeLLM) -> None:
    fake.configure(rules=[{"fault": "rate_limit", "times": 2, "retry_after_s": 0.3}])
    async with LLMClient(settings(fake)) as llm:
        assert (await call(llm)).topic
    log = fake.requests()
    assert [e["status"] for e in log] == [429, 429, 200]
    assert [e["retry_count"] for e in log] == [0, 1, 2]
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(log)]
    assert all(gap >= 0.28 for gap in gaps)


async def test_429_that_persists_is_bounded_by_the_sdk_retries(fake: FakeLLM) -> None:
    fake.configure(rules=[{"fault": "rate_limit", "times": None, "retry_after_s": 0.05}])
    async with LLMClient(settings(fake, llm_sdk_max_retries=2)) as llm:
        with pytest.raises(LLMError) as info:
            await call(llm)
    assert info.value.reason is LLMErrorReason.rate_limited
    assert info.value.retryable
    assert info.value.retry_after_s == pytest.approx(0.05)
    assert len(fake.requests()) == 3


async def test_a_retry_after_beyond_the_cap_is_handed_back_at_once(fake: FakeLLM) -> None:
    fake.configure(rules=[{"fault": "rate_limit", "times": None, "retry_after_s": 45}])
    async with LLMClient(settings(fake, llm_max_retry_after_s=10)) as llm:
        with pytest.raises(LLMError) as info:
            await call(llm)
    assert info.value.retry_after_s == 45
    assert len(fake.requests()) == 1


@pytest.mark.parametrize(
    ("fault", "reason", "retryable", "requests", "paid"),
    [
        ("server_error", LLMErrorReason.server_error, True, 2, False),
        ("timeout", LLMErrorReason.timeout, True, 2, False),
        ("malformed", LLMErrorReason.malformed_output, True, 1, True),
        ("invalid", LLMErrorReason.invalid_schema, True, 1, True),
        ("refusal", LLMErrorReason.refusal, False, 1, True),
        ("length", LLMErrorReason.truncated, False, 1, True),
    ],
)
async def test_faults_become_typed_errors_within_the_request_bound(
    fake: FakeLLM, fault: str, reason: LLMErrorReason, retryable: bool, requests: int, paid: bool
) -> None:
    fake.configure(rules=[{"fault": fault, "times": None}])
    sink = CollectingSink()
    # One SDK retry keeps the backoff short; only the timeout case gets a short timeout
    # (a busy machine must not turn the other cases into timeouts).
    async with LLMClient(
        settings(fake, llm_sdk_max_retries=1, llm_timeout_s=0.5 if fault == "timeout" else 10.0),
        usage_sink=sink,
    ) as llm:
        with pytest.raises(LLMError) as info:
            await call(llm)
    assert (info.value.reason, info.value.retryable) == (reason, retryable)
    assert len(fake.requests()) == requests
    assert [r.outcome for r in sink.records] == ([reason.value] if paid else [])
    assert API_KEY not in str(info.value)
    assert API_KEY not in repr(info.value.as_dict())


async def test_transient_faults_are_absorbed_by_sdk_retries(fake: FakeLLM) -> None:
    fake.configure(
        rules=[
            {"fault": "server_error", "times": 1},
            {"fault": "rate_limit", "times": 1, "retry_after_s": 0.01},
        ]
    )
    async with LLMClient(settings(fake)) as llm:
        assert (await call(llm)).topic
    assert [e["status"] for e in fake.requests()] == [500, 429, 200]


async def test_stream_text_hands_out_pieces_and_accounts_usage(fake: FakeLLM) -> None:
    fake.configure(cache_min_tokens=0, cache_increment=1)
    sink = CollectingSink()
    pieces: list[str] = []

    async def on_delta(piece: str) -> None:
        pieces.append(piece)

    messages = [
        {"role": "system", "content": "You are a mentor.\n- Concept title: Pods"},
        {"role": "user", "content": "What is a pod?"},
    ]
    job = uuid.uuid4()
    async with LLMClient(settings(fake), usage_sink=sink) as llm:
        first = await llm.stream_text(
            messages, ctx=CallContext(step="chat", job_id=job), on_delta=on_delta
        )
        second = await llm.stream_text(
            messages, ctx=CallContext(step="chat", job_id=job), on_delta=on_delta
        )
    assert first.finish_reason == "stop"
    assert "Pods" in first.text
    assert "".join(pieces) == first.text + second.text
    assert len(pieces) > 20
    assert first.usage is not None
    assert second.usage is not None
    assert [r.step for r in sink.records] == ["chat", "chat"]
    assert first.usage.completion_tokens > 10
    assert first.usage.cached_tokens == 0
    # The same messages again: the prompt is served from the cache, and costs less.
    assert 0 < second.usage.cached_tokens <= second.usage.prompt_tokens
    assert second.usage.cost_usd < first.usage.cost_usd
    log = fake.requests()
    assert [e["stream"] for e in log] == [True, True]


async def test_stream_text_maps_provider_errors(fake: FakeLLM) -> None:
    fake.configure(rules=[{"fault": "server_error", "times": None}])

    async def ignore(piece: str) -> None:
        raise AssertionError(piece)

    async with LLMClient(settings(fake, llm_sdk_max_retries=0)) as llm:
        with pytest.raises(LLMError) as caught:
            await llm.stream_text(
                [{"role": "user", "content": "hi"}],
                ctx=CallContext(step="chat"),
                on_delta=ignore,
            )
    assert caught.value.reason is LLMErrorReason.server_error
