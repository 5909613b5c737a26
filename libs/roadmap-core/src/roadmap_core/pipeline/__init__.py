"""Pipeline steps: pure async functions over the LLM client (no database, no Celery).

``plan_roadmap`` = ``analyze_intent`` → ``design_curriculum`` → ``validate_framework``
→ up to ``max_repair_rounds`` * ``repair_framework``; ``revise_framework`` turns
review feedback into a new framework validated the same way; ``generate_content``
writes one content item (tutorial, resources or quiz) of one concept. Pass a :class:`PipelineObserver` to see every step's
start, end, duration and token usage.
"""

from roadmap_core.pipeline.content import (
    Content,
    content_step,
    generate_content,
)
from roadmap_core.pipeline.context import ConceptContext, concept_context, concept_contexts
from roadmap_core.pipeline.grounding import ResourceSearch
from roadmap_core.pipeline.limits import PlanLimits
from roadmap_core.pipeline.observer import PipelineObserver, StepOutcome, observe_step
from roadmap_core.pipeline.planning import (
    PlanResult,
    analyze_intent,
    design_curriculum,
    plan_roadmap,
    repair_framework,
    revise_framework,
    validate_and_repair,
)
from roadmap_core.pipeline.validation import validate_framework

__all__ = [
    "ConceptContext",
    "Content",
    "PipelineObserver",
    "PlanLimits",
    "PlanResult",
    "ResourceSearch",
    "StepOutcome",
    "analyze_intent",
    "concept_context",
    "concept_contexts",
    "content_step",
    "design_curriculum",
    "generate_content",
    "observe_step",
    "plan_roadmap",
    "repair_framework",
    "revise_framework",
    "validate_and_repair",
    "validate_framework",
]
