"""What a content step knows about its concept's place in the framework."""

from __future__ import annotations

from dataclasses import dataclass

from roadmap_core.domain import Concept, Framework


@dataclass(frozen=True, slots=True)
class ConceptContext:
    framework_title: str
    stage_title: str
    module_title: str
    concept: Concept
    # Titles of the concept's prerequisites (in the framework's order).
    prerequisites: tuple[str, ...] = ()


def concept_contexts(framework: Framework) -> dict[str, ConceptContext]:
    """The context of every concept of ``framework``, by concept id."""
    titles = {c.id: c.title for c in framework.concepts()}
    out: dict[str, ConceptContext] = {}
    for stage in framework.stages:
        for module in stage.modules:
            for concept in module.concepts:
                out[concept.id] = ConceptContext(
                    framework_title=framework.title,
                    stage_title=stage.title,
                    module_title=module.title,
                    concept=concept,
                    prerequisites=tuple(titles[p] for p in concept.prerequisites if p in titles),
                )
    return out


def concept_context(framework: Framework, concept_id: str) -> ConceptContext:
    """The context of one concept; ``KeyError`` if the framework has no such concept."""
    return concept_contexts(framework)[concept_id]
