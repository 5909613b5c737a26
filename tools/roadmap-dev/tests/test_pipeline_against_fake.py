"""Pipeline steps (plan, repair, revise, content) against the fake LLM."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from roadmap_core.domain import (
    CheckedResourceList,
    ContentKind,
    JobStep,
    LinkStatus,
    Quiz,
    RoadmapRequest,
    Tutorial,
)
from roadmap_core.llm import CollectingSink, LLMClient, LLMError, LLMErrorReason
from roadmap_core.logdetails import StepInfo
from roadmap_core.pipeline import (
    PlanLimits,
    StepOutcome,
    concept_contexts,
    generate_content,
    plan_roadmap,
    revise_framework,
    validate_framework,
)
from roadmap_core.search import SearchError
from roadmap_core.settings import LLMSettings
from roadmap_dev.fake_llm import FakeConfig, FakeLLM, fake_llm_server
from roadmap_dev.fake_search import MOUNT_PATH, loopback_search

REQ = RoadmapRequest(
    goal="Learn TypeScript for web apps", level="beginner", weekly_hours=6, weeks=10
)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, JobStep, StepInfo]] = []
        self.outcomes: list[tuple[JobStep, StepOutcome]] = []

    async def step_started(self, step: JobStep, info: StepInfo) -> None:
        self.events.append(("start", step, info))

    async def step_finished(self, step: JobStep, outcome: StepOutcome) -> None:
        self.events.append(("finish", step, outcome.info))
        self.outcomes.append((step, outcome))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with fake_llm_server(seed=5) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake: FakeLLM) -> None:
    fake.configure(**FakeConfig(seed=5).model_dump(mode="json"))
    fake.reset()


def client(fake: FakeLLM, sink: CollectingSink | None = None) -> LLMClient:
    return LLMClient(
        LLMSettings(openai_base_url=fake.base_url, llm_sdk_max_retries=1), usage_sink=sink
    )


async def test_plan_produces_a_valid_framework_and_reports_each_step(fake: FakeLLM) -> None:
    observer, sink = Recorder(), CollectingSink()
    job = uuid.uuid4()
    async with client(fake, sink) as llm:
        result = await plan_roadmap(llm, REQ, PlanLimits(), job_id=job, observer=observer)
    assert result.ok
    assert result.repair_rounds == 0
    assert result.intent is not None
    assert validate_framework(result.framework, REQ, PlanLimits()) == []
    assert [(kind, step) for kind, step, _ in observer.events] == [
        ("start", JobStep.intent_analysis),
        ("finish", JobStep.intent_analysis),
        ("start", JobStep.curriculum_design),
        ("finish", JobStep.curriculum_design),
        ("start", JobStep.validation),
        ("finish", JobStep.validation),
    ]
    by_step = dict(observer.outcomes)
    assert by_step[JobStep.curriculum_design].usage.calls == 1
    assert (
        by_step[JobStep.curriculum_design].usage.completion_tokens
        == sink.records[1].completion_tokens
    )
    assert by_step[JobStep.curriculum_design].duration_ms > 0
    assert by_step[JobStep.validation].usage.calls == 0
    assert all(r.job_id == job for r in sink.records)


async def test_repair_fixes_an_invalid_framework(fake: FakeLLM) -> None:
    fake.configure(rules=[{"fault": "invalid", "match_schema": "Framework", "times": 1}])
    observer = Recorder()
    async with client(fake) as llm:
        result = await plan_roadmap(llm, REQ, PlanLimits(), observer=observer)
    assert result.ok
    assert result.repair_rounds == 1
    assert [e["schema"] for e in fake.requests()] == ["IntentAnalysis", "Framework", "Framework"]
    validations = [o for s, o in observer.outcomes if s is JobStep.validation]
    assert [v.ok for v in validations] == [False, True]
    first_errors = validations[0].info.errors or []
    assert any("cycle" in e for e in first_errors)
    assert any("no-such-concept" in e for e in first_errors)
    [repair] = [o for s, o in observer.outcomes if s is JobStep.repair]
    assert repair.info.round == 1
    assert repair.info.errors == first_errors


@pytest.mark.parametrize("rounds", [0, 2])
async def test_still_invalid_after_the_repair_rounds_fails_with_reasons(
    fake: FakeLLM, rounds: int
) -> None:
    fake.configure(rules=[{"fault": "invalid", "match_schema": "Framework", "times": None}])
    limits = PlanLimits(max_repair_rounds=rounds)
    async with client(fake) as llm:
        result = await plan_roadmap(llm, REQ, limits)
    assert not result.ok
    assert result.repair_rounds == rounds
    assert any("ids must be unique" in e for e in result.errors)
    assert any("budget" in e for e in result.errors)
    assert [e["schema"] for e in fake.requests()].count("Framework") == 1 + rounds


async def test_an_llm_error_during_planning_propagates_typed(fake: FakeLLM) -> None:
    fake.configure(rules=[{"fault": "refusal", "match_schema": "Framework"}])
    observer = Recorder()
    async with client(fake) as llm:
        with pytest.raises(LLMError) as info:
            await plan_roadmap(llm, REQ, PlanLimits(), observer=observer)
    assert info.value.reason is LLMErrorReason.refusal
    step, outcome = observer.outcomes[-1]
    assert step is JobStep.curriculum_design
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.startswith("refusal")


async def test_review_feedback_gives_a_revised_valid_framework(fake: FakeLLM) -> None:
    observer = Recorder()
    async with client(fake) as llm:
        first = await plan_roadmap(llm, REQ, PlanLimits())
        fake.configure(rules=[{"fault": "invalid", "match_schema": "Framework", "times": 1}])
        revised = await revise_framework(
            llm,
            REQ,
            first.framework,
            "More hands-on projects, please",
            PlanLimits(),
            observer=observer,
        )
    assert revised.ok
    assert revised.repair_rounds == 1
    assert [s for s, _ in observer.outcomes] == [
        JobStep.revision,
        JobStep.validation,
        JobStep.repair,
        JobStep.validation,
    ]


async def test_revision_without_problems_marks_the_new_plan(fake: FakeLLM) -> None:
    async with client(fake) as llm:
        first = await plan_roadmap(llm, REQ, PlanLimits())
        revised = await revise_framework(llm, REQ, first.framework, "Shorter please", PlanLimits())
    assert revised.ok
    assert revised.framework != first.framework
    assert "Revised" in revised.framework.summary


async def test_content_uses_the_concept_context_and_instructions(fake: FakeLLM) -> None:
    sink = CollectingSink()
    item = uuid.uuid4()
    async with client(fake, sink) as llm:
        plan = await plan_roadmap(llm, REQ, PlanLimits())
        concept = plan.framework.concepts()[1]
        context = concept_contexts(plan.framework)[concept.id]
        tutorial = await generate_content(
            llm,
            ContentKind.tutorial,
            REQ,
            context,
            instructions="Compare with JavaScript",
            item_id=item,
        )
        quiz = await generate_content(llm, ContentKind.quiz, REQ, context)
    assert isinstance(tutorial, Tutorial)
    assert isinstance(quiz, Quiz)
    assert concept.title in tutorial.markdown
    assert "Compare with JavaScript" in tutorial.markdown
    assert all(0 <= i < len(q.options) for q in quiz.questions for i in q.correct)
    assert fake.requests()[-2]["concept"] == concept.title
    assert sink.records[-2].item_id == item
    assert sink.records[-2].step == "content_generation.tutorial"


async def test_fake_honours_the_size_limits_in_the_prompt(fake: FakeLLM) -> None:
    fake.configure(concepts=30)
    limits = PlanLimits(max_concepts=12, max_stages=2)
    async with client(fake) as llm:
        result = await plan_roadmap(llm, REQ, limits)
    assert result.ok
    assert len(result.framework.concepts()) == 12
    assert len(result.framework.stages) <= 2
    assert re.search("TypeScript", result.framework.title)


async def test_content_kinds_of_a_concept_run_concurrently(fake: FakeLLM) -> None:
    import asyncio

    from roadmap_core.pipeline import generate_content

    # Tutorials and quizzes: a resources call starts only after its search and link
    # checks, so whether it overlaps the others would depend on the machine's load.
    fake.configure(latency_ms=200)
    async with client(fake) as llm:
        plan = await plan_roadmap(llm, REQ, PlanLimits(max_concepts=4))
        fake.reset()
        contexts = list(concept_contexts(plan.framework).values())[:3]
        assert len(contexts) == 3
        await asyncio.gather(
            *(
                generate_content(llm, kind, REQ, ctx)
                for ctx in contexts
                for kind in (ContentKind.tutorial, ContentKind.quiz)
            )
        )
    assert max(e["in_flight"] for e in fake.requests()) == 6


async def test_resources_are_chosen_among_checked_search_results(fake: FakeLLM) -> None:
    async with client(fake) as llm:
        plan = await plan_roadmap(llm, REQ, PlanLimits(max_concepts=4))
        context = next(iter(concept_contexts(plan.framework).values()))
        search = loopback_search(fake.base_url)
        try:
            found = await generate_content(llm, ContentKind.resources, REQ, context, search=search)
        finally:
            await search.aclose()
    assert isinstance(found, CheckedResourceList)
    assert found.search_provider == "searxng"
    assert found.search_query
    assert context.concept.title in found.search_query
    prompt = fake.requests()[-1]
    assert prompt["schema"] == "ResourceList"
    page_base = fake.url + MOUNT_PATH + "/pages/"
    # The fake model also returned a URL it made up: it is not stored.
    assert found.resources
    for resource in found.resources:
        assert str(resource.url).startswith(page_base)
        assert resource.link is not None
        assert resource.link.status is LinkStatus.ok
        assert resource.link.http_status == 200
        # Only pages that answer 2xx are offered (404, 500 and the refused redirects are not).
        assert not str(resource.url).endswith(("-missing", "-broken", "-private", "-metadata"))
    redirected = [r for r in found.resources if str(r.url).endswith("-redirect")]
    assert redirected
    assert redirected[0].link is not None
    assert redirected[0].link.final_url.endswith("-redirect-landing")
    assert redirected[0].link.page_title


async def test_resources_without_search_fail_permanently(fake: FakeLLM) -> None:
    async with client(fake) as llm:
        plan = await plan_roadmap(llm, REQ, PlanLimits(max_concepts=4))
        context = next(iter(concept_contexts(plan.framework).values()))
        with pytest.raises(SearchError) as caught:
            await generate_content(llm, ContentKind.resources, REQ, context)
    assert not caught.value.retryable
