"""The fake's answers are schema-valid and plausible for prompts rendered by roadmap_core."""

from __future__ import annotations

import re
from typing import Any

import pytest

from roadmap_core.domain import (
    CONTENT_MODELS,
    ContentKind,
    Framework,
    IntentAnalysis,
    LLMModel,
    Quiz,
    ResourceList,
    RoadmapRequest,
    Tutorial,
)
from roadmap_core.llm import PromptName, render_messages, response_format
from roadmap_core.pipeline import PlanLimits, concept_context, validate_framework
from roadmap_dev.fake_llm import generate
from roadmap_dev.fake_llm.prompt import PromptFacts, parse_prompt

CJK = re.compile(r"[\u4e00-\u9fff]")


def request(**kw: Any) -> RoadmapRequest:
    base: dict[str, Any] = {
        "goal": "Learn Rust for embedded work",
        "level": "intermediate",
        "weekly_hours": 6,
        "weeks": 12,
    }
    return RoadmapRequest(**(base | kw))


def facts_for(name: PromptName, req: RoadmapRequest, **ctx: Any) -> PromptFacts:
    return parse_prompt(render_messages(name, language=req.language, request=req, **ctx))


def design_facts(req: RoadmapRequest, limits: PlanLimits) -> PromptFacts:
    return facts_for(PromptName.design, req, intent=None, limits=limits)


def make_framework(
    req: RoadmapRequest, limits: PlanLimits, forced: int | None = None, seed: int = 0
) -> Framework:
    facts = design_facts(req, limits)
    data = generate.framework(facts, generate.rng_for(seed, facts.digest), forced)
    return Framework.model_validate(data)


def test_prompt_facts_are_read_from_rendered_prompts() -> None:
    req = request(language="zh", weekly_hours=5, weeks=10)
    facts = design_facts(req, PlanLimits(max_concepts=12, max_stages=3))
    assert (facts.goal, facts.level, facts.language) == (
        "Learn Rust for embedded work",
        "intermediate",
        "zh",
    )
    assert (facts.hour_budget, facts.max_concepts, facts.max_stages) == (50.0, 12, 3)
    assert facts.chinese


@pytest.mark.parametrize(
    ("req", "limits", "forced"),
    [
        (request(), PlanLimits(), None),
        (request(weekly_hours=2, weeks=2), PlanLimits(), None),
        (request(weekly_hours=10, weeks=20), PlanLimits(), 24),
        (request(weekly_hours=10, weeks=20), PlanLimits(max_concepts=40, max_stages=8), 40),
        (request(), PlanLimits(max_concepts=5, max_stages=1), 24),
        (request(language="zh", goal="学习 Python 数据分析"), PlanLimits(), 24),
    ],
)
def test_generated_frameworks_pass_validation(
    req: RoadmapRequest, limits: PlanLimits, forced: int | None
) -> None:
    fw = make_framework(req, limits, forced)
    assert validate_framework(fw, req, limits) == []
    if forced is not None:
        assert len(fw.concepts()) == min(forced, limits.max_concepts)
    assert len(fw.stages) <= limits.max_stages


def test_the_topic_appears_in_titles_and_ids_are_slugs() -> None:
    fw = make_framework(request(), PlanLimits(), 24)
    assert fw.title.startswith("Rust for embedded work")
    assert all(c.title.startswith("Rust for embedded work") for c in fw.concepts())
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", c.id) for c in fw.concepts())


def test_chinese_requests_get_chinese_text() -> None:
    req = request(language="zh")
    fw = make_framework(req, PlanLimits(), 8)
    assert CJK.search(fw.title)
    assert all(CJK.search(c.title) and CJK.search(c.summary) for c in fw.concepts())
    ctx = concept_context(fw, fw.concepts()[0].id)
    for name, model in (
        (PromptName.tutorial, Tutorial),
        (PromptName.resources, ResourceList),
        (PromptName.quiz, Quiz),
    ):
        facts = facts_for(name, req, context=ctx, instructions=None)
        value = model.model_validate(
            generate.generate(model.__name__, facts, generate.rng_for(0, facts.digest), None)
        )
        assert CJK.search(value.model_dump_json())


def test_deterministic_for_a_seed() -> None:
    req, limits = request(), PlanLimits()
    assert make_framework(req, limits, seed=7) == make_framework(req, limits, seed=7)
    assert make_framework(req, limits, seed=7) != make_framework(req, limits, seed=8)


@pytest.mark.parametrize("kind", list(ContentKind))
def test_content_answers_validate_and_name_the_concept(kind: ContentKind) -> None:
    req = request()
    fw = make_framework(req, PlanLimits(), 6)
    ctx = concept_context(fw, fw.concepts()[2].id)
    name = {
        ContentKind.tutorial: PromptName.tutorial,
        ContentKind.resources: PromptName.resources,
        ContentKind.quiz: PromptName.quiz,
    }[kind]
    facts = facts_for(name, req, context=ctx, instructions="Use more diagrams")
    assert facts.concept_title == ctx.concept.title
    assert facts.instructions == "Use more diagrams"
    schema = generate.detect_schema(response_format(CONTENT_MODELS[kind]))
    assert schema is not None
    data = generate.generate(schema, facts, generate.rng_for(0, facts.digest), None)
    if kind is ContentKind.tutorial:
        tutorial = Tutorial.model_validate(data)
        assert ctx.concept.title in tutorial.markdown
        assert "Use more diagrams" in tutorial.markdown
    elif kind is ContentKind.resources:
        resources = ResourceList.model_validate(data).resources
        assert all(str(r.url).startswith("https://") for r in resources)
    else:
        quiz = Quiz.model_validate(data)
        assert {q.type.value for q in quiz.questions} == {
            "single_choice",
            "multiple_choice",
            "true_false",
        }


def test_intent_answers_validate() -> None:
    facts = facts_for(PromptName.intent, request())
    intent = IntentAnalysis.model_validate(
        generate.intent(facts, generate.rng_for(0, facts.digest))
    )
    assert intent.topic == "Rust for embedded work"
    assert intent.domain == "Software development"


def test_invalid_framework_fails_validation_and_repair_fixes_it() -> None:
    req, limits = request(), PlanLimits()
    facts = design_facts(req, limits)
    broken = Framework.model_validate(
        generate.invalid_framework(facts, generate.rng_for(0, "x"), 8)
    )
    errors = validate_framework(broken, req, limits)
    assert any("ids must be unique" in e for e in errors)
    assert any("no-such-concept" in e for e in errors)
    assert any("cycle" in e for e in errors)
    assert any("budget" in e for e in errors)
    repair_facts = facts_for(
        PromptName.repair,
        req,
        framework_json=broken.model_dump_json(),
        errors=errors,
        limits=limits,
    )
    assert repair_facts.problems == errors
    fixed = Framework.model_validate(
        generate.generate("Framework", repair_facts, generate.rng_for(0, "y"), None)
    )
    assert validate_framework(fixed, req, limits) == []
    # A careful repair keeps what was fine.
    assert fixed.title == broken.title


@pytest.mark.parametrize("schema", ["Tutorial", "ResourceList", "Quiz", "IntentAnalysis"])
def test_invalid_instances_are_rejected_by_the_models(schema: str) -> None:
    models: dict[str, type[LLMModel]] = {
        "Tutorial": Tutorial,
        "ResourceList": ResourceList,
        "Quiz": Quiz,
        "IntentAnalysis": IntentAnalysis,
    }
    model = models[schema]
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError is a ValueError
        model.model_validate(generate.invalid_instance(schema))


def test_schema_detection_falls_back_to_properties() -> None:
    fmt = response_format(Framework)
    fmt["json_schema"]["name"] = "Plan"
    assert generate.detect_schema(fmt) == "Framework"
    assert generate.detect_schema(None) is None
    assert generate.detect_schema({"type": "json_object"}) is None
