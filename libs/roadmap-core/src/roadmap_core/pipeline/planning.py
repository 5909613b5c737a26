"""Planning: intent → curriculum → deterministic validation → bounded LLM repair.

Pure async functions over :class:`roadmap_core.llm.LLMClient`: no database, no
Celery. LLM failures propagate as :class:`roadmap_core.llm.LLMError` (the caller
decides on retries from ``retryable``); a framework that is still invalid after
``max_repair_rounds`` repairs is not an exception but a :class:`PlanResult` with
``ok == False`` and the reasons, which become the job's failure.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from roadmap_core.domain import Framework, IntentAnalysis, JobStep, RoadmapRequest
from roadmap_core.llm.client import CallContext, LLMClient
from roadmap_core.llm.templates import PromptName, render_messages
from roadmap_core.logdetails import StepInfo
from roadmap_core.pipeline.limits import PlanLimits
from roadmap_core.pipeline.observer import PipelineObserver, observe_step
from roadmap_core.pipeline.validation import validate_framework

# Output budget of framework answers: ~150 tokens per concept plus titles/summary.
TOKENS_PER_CONCEPT = 150
FRAMEWORK_OVERHEAD_TOKENS = 1000


@dataclass(frozen=True, slots=True)
class PlanResult:
    """The last framework produced and the problems it still has (none when ``ok``)."""

    framework: Framework
    errors: list[str] = field(default_factory=list)
    intent: IntentAnalysis | None = None
    repair_rounds: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def _framework_tokens(llm: LLMClient, limits: PlanLimits) -> int:
    needed = TOKENS_PER_CONCEPT * limits.max_concepts + FRAMEWORK_OVERHEAD_TOKENS
    return max(llm.settings.llm_max_output_tokens, needed)


def _framework_json(framework: Framework) -> str:
    return json.dumps(framework.model_dump(mode="json"), ensure_ascii=False, indent=1)


async def analyze_intent(
    llm: LLMClient,
    request: RoadmapRequest,
    *,
    job_id: uuid.UUID | None = None,
    observer: PipelineObserver | None = None,
) -> IntentAnalysis:
    async with observe_step(observer, JobStep.intent_analysis):
        return await llm.structured(
            IntentAnalysis,
            render_messages(PromptName.intent, language=request.language, request=request),
            ctx=CallContext(JobStep.intent_analysis.value, job_id=job_id),
            model=llm.settings.planning_model,
        )


async def design_curriculum(
    llm: LLMClient,
    request: RoadmapRequest,
    intent: IntentAnalysis | None,
    limits: PlanLimits,
    *,
    job_id: uuid.UUID | None = None,
    observer: PipelineObserver | None = None,
) -> Framework:
    async with observe_step(observer, JobStep.curriculum_design) as outcome:
        framework = await llm.structured(
            Framework,
            render_messages(
                PromptName.design,
                language=request.language,
                request=request,
                intent=intent,
                limits=limits,
            ),
            ctx=CallContext(JobStep.curriculum_design.value, job_id=job_id),
            model=llm.settings.planning_model,
            max_output_tokens=_framework_tokens(llm, limits),
        )
        outcome.info.concepts = len(framework.concepts())
        return framework


async def repair_framework(
    llm: LLMClient,
    request: RoadmapRequest,
    framework: Framework,
    errors: list[str],
    limits: PlanLimits,
    *,
    round_no: int = 1,
    job_id: uuid.UUID | None = None,
    observer: PipelineObserver | None = None,
) -> Framework:
    """One repair round: the LLM gets the framework and the validation errors."""
    async with observe_step(
        observer, JobStep.repair, StepInfo(round=round_no, errors=errors)
    ) as outcome:
        repaired = await llm.structured(
            Framework,
            render_messages(
                PromptName.repair,
                language=request.language,
                request=request,
                framework_json=_framework_json(framework),
                errors=errors,
                limits=limits,
            ),
            ctx=CallContext(JobStep.repair.value, job_id=job_id),
            model=llm.settings.planning_model,
            max_output_tokens=_framework_tokens(llm, limits),
        )
        outcome.info.concepts = len(repaired.concepts())
        return repaired


async def validate_and_repair(
    llm: LLMClient,
    request: RoadmapRequest,
    framework: Framework,
    limits: PlanLimits,
    *,
    intent: IntentAnalysis | None = None,
    job_id: uuid.UUID | None = None,
    observer: PipelineObserver | None = None,
) -> PlanResult:
    """Validate ``framework``; repair it up to ``limits.max_repair_rounds`` times."""
    rounds = 0
    while True:
        async with observe_step(observer, JobStep.validation, StepInfo(round=rounds)) as outcome:
            errors = validate_framework(framework, request, limits)
            outcome.ok = not errors
            outcome.info.errors = errors
            outcome.info.concepts = len(framework.concepts())
        if not errors or rounds >= limits.max_repair_rounds:
            return PlanResult(framework, errors, intent, rounds)
        rounds += 1
        framework = await repair_framework(
            llm,
            request,
            framework,
            errors,
            limits,
            round_no=rounds,
            job_id=job_id,
            observer=observer,
        )


async def plan_roadmap(
    llm: LLMClient,
    request: RoadmapRequest,
    limits: PlanLimits,
    *,
    job_id: uuid.UUID | None = None,
    observer: PipelineObserver | None = None,
) -> PlanResult:
    """Intent analysis → curriculum design → validation with bounded repair rounds.

    At most ``2 + limits.max_repair_rounds`` LLM calls.
    """
    intent = await analyze_intent(llm, request, job_id=job_id, observer=observer)
    framework = await design_curriculum(
        llm, request, intent, limits, job_id=job_id, observer=observer
    )
    return await validate_and_repair(
        llm, request, framework, limits, intent=intent, job_id=job_id, observer=observer
    )


async def revise_framework(
    llm: LLMClient,
    request: RoadmapRequest,
    framework: Framework,
    feedback: str,
    limits: PlanLimits,
    *,
    job_id: uuid.UUID | None = None,
    observer: PipelineObserver | None = None,
) -> PlanResult:
    """Review feedback → a revised framework, validated and repaired like a new plan.

    At most ``1 + limits.max_repair_rounds`` LLM calls.
    """
    async with observe_step(observer, JobStep.revision) as outcome:
        revised = await llm.structured(
            Framework,
            render_messages(
                PromptName.revise,
                language=request.language,
                request=request,
                framework_json=_framework_json(framework),
                feedback=feedback,
                limits=limits,
            ),
            ctx=CallContext(JobStep.revision.value, job_id=job_id),
            model=llm.settings.planning_model,
            max_output_tokens=_framework_tokens(llm, limits),
        )
        outcome.info.concepts = len(revised.concepts())
    return await validate_and_repair(
        llm, request, revised, limits, job_id=job_id, observer=observer
    )
