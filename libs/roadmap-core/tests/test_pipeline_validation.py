from __future__ import annotations

from typing import Any

import pytest

from roadmap_core.domain import Framework, RoadmapRequest
from roadmap_core.pipeline import PlanLimits, validate_framework

REQUEST = RoadmapRequest(goal="Learn Rust", level="beginner", weekly_hours=5, weeks=4)  # 20 h
LIMITS = PlanLimits(max_concepts=6, max_stages=2, hours_tolerance=0.10)


def concept(cid: str, hours: float = 2.0, prereqs: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": cid,
        "title": cid.title(),
        "summary": "s",
        "difficulty": 2,
        "estimated_hours": hours,
        "prerequisites": prereqs or [],
    }


def framework(*stages: list[list[dict[str, Any]]]) -> Framework:
    return Framework.model_validate(
        {
            "title": "Rust",
            "stages": [
                {
                    "title": f"Stage {s}",
                    "modules": [
                        {"title": f"Module {s}.{m}", "concepts": cs} for m, cs in enumerate(mods)
                    ],
                }
                for s, mods in enumerate(stages)
            ],
        }
    )


def valid() -> Framework:
    return framework(
        [[concept("basics"), concept("syntax", prereqs=["basics"])]],
        [
            [concept("ownership", prereqs=["syntax", "basics"])],
            [concept("traits", prereqs=["ownership"])],
        ],
    )


def test_a_valid_framework_has_no_errors() -> None:
    assert validate_framework(valid(), REQUEST, LIMITS) == []


def test_duplicate_ids_are_reported_once_per_id() -> None:
    fw = framework([[concept("basics"), concept("basics"), concept("syntax")]])
    errors = validate_framework(fw, REQUEST, LIMITS)
    assert errors == ['concept id "basics" is used by 2 concepts; ids must be unique']


def test_missing_and_self_prerequisites() -> None:
    fw = framework([[concept("basics", prereqs=["basics"]), concept("syntax", prereqs=["nope"])]])
    errors = validate_framework(fw, REQUEST, LIMITS)
    assert 'concept "basics" lists itself as a prerequisite' in errors
    assert any('"syntax" has prerequisite "nope"' in e for e in errors)
    assert not any("cycle" in e for e in errors)


@pytest.mark.parametrize(
    ("edges", "cycle_members"),
    [
        ({"a": ["b"], "b": ["a"]}, {"a", "b"}),
        ({"a": ["c"], "b": ["a"], "c": ["b"], "d": ["a"]}, {"a", "b", "c"}),
    ],
)
def test_cycles_are_found_and_named(edges: dict[str, list[str]], cycle_members: set[str]) -> None:
    fw = framework([[concept(c, hours=1, prereqs=p) for c, p in edges.items()]])
    errors = validate_framework(fw, REQUEST, LIMITS)
    cycles = [e for e in errors if e.startswith("prerequisites form a cycle")]
    assert len(cycles) == 1
    path = cycles[0].split(": ", 1)[1].split(" -> ")
    assert path[0] == path[-1]
    assert set(path) == cycle_members


def test_two_separate_cycles_are_both_reported() -> None:
    fw = framework(
        [
            [
                concept("a", 1, ["b"]),
                concept("b", 1, ["a"]),
                concept("c", 1, ["d"]),
                concept("d", 1, ["c"]),
            ]
        ]
    )
    assert sum("cycle" in e for e in validate_framework(fw, REQUEST, LIMITS)) == 2


def test_hours_over_budget_beyond_tolerance() -> None:
    within = framework([[concept("a", 11.0), concept("b", 11.0)]])  # 22 h <= 20 h * 1.1
    assert validate_framework(within, REQUEST, LIMITS) == []
    over = framework([[concept("a", 11.0), concept("b", 11.5)]])  # 22.5 h
    errors = validate_framework(over, REQUEST, LIMITS)
    assert len(errors) == 1
    assert "22.5 h" in errors[0]
    assert "budget of 20 h" in errors[0]


def test_empty_levels_are_reported() -> None:
    fw = Framework.model_validate(
        {
            "title": "Rust",
            "stages": [
                {"title": "Empty stage", "modules": []},
                {
                    "title": "Full",
                    "modules": [
                        {"title": "Hollow", "concepts": []},
                        {"title": "Ok", "concepts": [concept("a")]},
                    ],
                },
            ],
        }
    )
    errors = validate_framework(fw, REQUEST, LIMITS)
    assert 'stage 1 "Empty stage" has no modules' in errors
    assert any('module 2.1 "Hollow"' in e and "has no concepts" in e for e in errors)


def test_no_stages_at_all() -> None:
    fw = Framework.model_validate({"title": "Rust", "stages": []})
    assert "the framework has no stages" in validate_framework(fw, REQUEST, LIMITS)


def test_too_many_concepts_and_stages() -> None:
    fw = framework(
        [[concept(f"c{i}", 0.5) for i in range(4)]],
        [[concept(f"d{i}", 0.5) for i in range(2)]],
        [[concept("e0", 0.5)]],
    )
    errors = validate_framework(fw, REQUEST, LIMITS)
    assert "the framework has 7 concepts; at most 6 are allowed" in errors
    assert "the framework has 3 stages; at most 2 are allowed" in errors


def test_limits_come_from_settings() -> None:
    from roadmap_core.settings import LLMSettings

    limits = PlanLimits.from_settings(
        LLMSettings(max_concepts=12, max_stages=3, plan_hours_tolerance=0.2, max_repair_rounds=4)
    )
    assert limits == PlanLimits(
        max_concepts=12, max_stages=3, hours_tolerance=0.2, max_repair_rounds=4
    )
    assert PlanLimits.from_settings(LLMSettings()).max_concepts == 40
