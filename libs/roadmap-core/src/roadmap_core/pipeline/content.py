"""Per-concept content: a Markdown tutorial, learning resources, a quiz.

One LLM call per kind; the three kinds of a concept are independent, so callers
run them concurrently (the client's semaphore and the global limiter bound them).
"""

from __future__ import annotations

import uuid
from typing import Final

from roadmap_core.domain import (
    CheckedResourceList,
    ContentKind,
    JobStep,
    Quiz,
    ResourceList,
    RoadmapRequest,
    Tutorial,
)
from roadmap_core.llm.client import CallContext, LLMClient
from roadmap_core.llm.templates import PromptName, render_messages
from roadmap_core.logdetails import StepInfo
from roadmap_core.pipeline.context import ConceptContext
from roadmap_core.pipeline.grounding import (
    ResourceSearch,
    Sources,
    choose_checked,
    find_sources,
)
from roadmap_core.pipeline.observer import PipelineObserver, observe_step

Content = Tutorial | CheckedResourceList | Quiz

_PROMPTS: Final[dict[ContentKind, PromptName]] = {
    ContentKind.tutorial: PromptName.tutorial,
    ContentKind.resources: PromptName.resources,
    ContentKind.quiz: PromptName.quiz,
}
# What the model is asked for (resources: its choice among the sources, checked after).
_MODELS: Final[dict[ContentKind, type[Tutorial | ResourceList | Quiz]]] = {
    ContentKind.tutorial: Tutorial,
    ContentKind.resources: ResourceList,
    ContentKind.quiz: Quiz,
}


def content_step(kind: ContentKind) -> str:
    """The ``step`` recorded in usage rows of a content call, e.g. ``content_generation.quiz``."""
    return f"{JobStep.content_generation.value}.{kind.value}"


async def generate_content(
    llm: LLMClient,
    kind: ContentKind,
    request: RoadmapRequest,
    context: ConceptContext,
    *,
    instructions: str | None = None,
    job_id: uuid.UUID | None = None,
    item_id: uuid.UUID | None = None,
    observer: PipelineObserver | None = None,
    search: ResourceSearch | None = None,
    concept_id: uuid.UUID | None = None,
    sources: Sources | None = None,
) -> Content:
    """Generate one content item of ``kind`` for the concept described by ``context``.

    Resources need ``search``: the model chooses among search results that passed the
    link check, and whatever URL it returns that is not one of them is dropped. A caller
    that searched already (the worker does it before counting the attempt, so the LLM
    call follows the attempt's job-status check at once) passes ``sources``.
    """
    async with observe_step(
        observer,
        JobStep.content_generation,
        StepInfo(content_kind=kind, concept=context.concept.id),
    ):
        if kind is ContentKind.resources and sources is None:
            sources = await find_sources(search, context, job_id=job_id, concept_id=concept_id)
        value = await llm.structured(
            _MODELS[kind],
            render_messages(
                _PROMPTS[kind],
                language=request.language,
                request=request,
                context=context,
                instructions=(instructions or "").strip() or None,
                sources=sources.offered if sources and kind is ContentKind.resources else [],
            ),
            ctx=CallContext(content_step(kind), job_id=job_id, item_id=item_id),
            model=llm.settings.content_model,
        )
        if isinstance(value, ResourceList):
            assert sources is not None  # resources always have sources by now
            return choose_checked(value, sources, context, job_id=job_id, concept_id=concept_id)
        return value
