from __future__ import annotations

import pytest
from pydantic import ValidationError

from roadmap_core.domain import (
    JobStatus,
    Quiz,
    QuizQuestion,
    ResourceList,
    RoadmapRequest,
)


def _q(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "q1",
        "type": "single_choice",
        "prompt": "p?",
        "options": ["a", "b", "c"],
        "correct": [1],
        "explanation": "because",
    }
    return base | kw


def test_request_rejects_unknown_fields_and_bounds_sizes() -> None:
    ok = RoadmapRequest(goal="Learn Rust", level="beginner", weekly_hours=6, weeks=12)
    assert ok.hour_budget == 72
    with pytest.raises(ValidationError):
        RoadmapRequest.model_validate(
            {
                "goal": "Learn Rust",
                "level": "beginner",
                "weekly_hours": 6,
                "weeks": 12,
                "owner_id": "x",
            }
        )
    with pytest.raises(ValidationError):
        RoadmapRequest(goal="x" * 501, level="beginner", weekly_hours=6, weeks=12)
    with pytest.raises(ValidationError):
        RoadmapRequest(goal="Learn", level="expert", weekly_hours=6, weeks=12)


@pytest.mark.parametrize(
    "bad",
    [
        {"correct": [3]},
        {"correct": [0, 1]},
        {"type": "true_false"},
        {"type": "multiple_choice", "correct": [1, 1]},
    ],
)
def test_quiz_questions_must_be_consistent(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        QuizQuestion.model_validate(_q(**bad))


def test_quiz_ids_unique_and_multiple_choice_allowed() -> None:
    Quiz.model_validate({"questions": [_q(), _q(id="q2", type="multiple_choice", correct=[0, 2])]})
    with pytest.raises(ValidationError):
        Quiz.model_validate({"questions": [_q(), _q()]})


def test_resource_urls_must_be_http() -> None:
    good = {"title": "t", "url": "https://example.org/x", "type": "article"}
    ResourceList.model_validate({"resources": [good]})
    with pytest.raises(ValidationError):
        ResourceList.model_validate({"resources": [good | {"url": "javascript:alert(1)"}]})


def test_terminal_and_active_statuses_partition() -> None:
    for status in JobStatus:
        assert status.is_terminal != status.is_active
