"""Text PostgreSQL cannot store is refused by validation, naming the field."""

from __future__ import annotations

import json
from typing import Annotated

import pytest
from pydantic import BaseModel, StringConstraints, ValidationError

from roadmap_core.domain import RoadmapRequest
from roadmap_core.text import STORABLE, StorableStr


class Body(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=5), STORABLE]
    note: StorableStr | None = None


def request(**overrides: object) -> dict[str, object]:
    return {"goal": "Learn SQL", "level": "beginner", "weekly_hours": 2, "weeks": 2, **overrides}


@pytest.mark.parametrize("field", ["goal", "learning_style", "background"])
def test_a_nul_in_any_text_of_a_roadmap_request_is_refused_naming_the_field(field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        RoadmapRequest.model_validate(request(**{field: "Learn \x00 SQL"}))
    assert [(e["loc"], e["type"]) for e in refused.value.errors()] == [((field,), "text_nul")]


def test_lone_surrogates_are_refused_from_json_and_from_python() -> None:
    raw = json.dumps(request(goal="Learn \ud800 SQL"))  # JSON carries it as an escape
    with pytest.raises(ValidationError):
        RoadmapRequest.model_validate_json(raw)
    with pytest.raises(ValidationError) as refused:
        RoadmapRequest.model_validate(json.loads(raw))
    assert refused.value.errors()[0]["loc"] == ("goal",)


def test_the_field_constraints_still_apply_and_other_characters_are_kept() -> None:
    assert Body(name="  ab\x01  ", note="\ufffe\U0010ffff").name == "ab\x01"
    with pytest.raises(ValidationError) as refused:
        Body(name="abcdef")
    assert refused.value.errors()[0]["type"] == "string_too_long"
    with pytest.raises(ValidationError) as nul:
        Body(name="a", note="\x00")
    assert nul.value.errors()[0]["loc"] == ("note",)
