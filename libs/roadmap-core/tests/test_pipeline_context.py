from __future__ import annotations

import pytest

from roadmap_core.domain import Framework
from roadmap_core.pipeline import concept_context, concept_contexts

FW = Framework.model_validate(
    {
        "title": "Rust roadmap",
        "stages": [
            {
                "title": "Start",
                "modules": [
                    {
                        "title": "Basics",
                        "concepts": [
                            {
                                "id": "a",
                                "title": "A",
                                "summary": "",
                                "difficulty": 1,
                                "estimated_hours": 1,
                            },
                            {
                                "id": "b",
                                "title": "B",
                                "summary": "",
                                "difficulty": 1,
                                "estimated_hours": 1,
                                "prerequisites": ["a"],
                            },
                        ],
                    }
                ],
            }
        ],
    }
)


def test_context_names_the_concepts_place_and_prerequisites() -> None:
    ctx = concept_context(FW, "b")
    assert (ctx.framework_title, ctx.stage_title, ctx.module_title) == (
        "Rust roadmap",
        "Start",
        "Basics",
    )
    assert ctx.prerequisites == ("A",)
    assert set(concept_contexts(FW)) == {"a", "b"}
    with pytest.raises(KeyError):
        concept_context(FW, "zzz")
