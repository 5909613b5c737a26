"""The kinds of execution-log details: declared once, produced strictly, read leniently."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from roadmap_core import logdetails
from roadmap_core.domain import ContentKind
from roadmap_core.logdetails import (
    LlmCallDetails,
    LogDetails,
    LogDetailsBase,
    RegenerationRequestedDetails,
    StepInfo,
    StepStartedDetails,
    StoredLogDetails,
    TruncatedDetails,
    UntypedDetails,
    kinds_of,
    parse_produced,
    parse_stored,
)


def _kind(model: type[BaseModel]) -> str:
    return str(model.model_fields["kind"].default)


def _subclasses(cls: type[BaseModel]) -> set[type[BaseModel]]:
    direct = set(cls.__subclasses__())
    return direct.union(*(_subclasses(c) for c in direct))


def test_every_kind_is_in_the_union_and_kinds_are_unique() -> None:
    produced = set(kinds_of(LogDetails).values())
    stored = set(kinds_of(StoredLogDetails).values())
    concrete = {c for c in _subclasses(LogDetailsBase) if "kind" in c.model_fields}
    # A kind written but left out of the union would be refused by every reader.
    assert concrete - {TruncatedDetails} == produced
    assert stored == produced | {TruncatedDetails, UntypedDetails}
    kinds = [_kind(m) for m in stored]
    assert len(kinds) == len(set(kinds))
    assert _kind(UntypedDetails) == logdetails.UNTYPED_KIND


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "chat_message", "text": "a kind nobody declared"},
        {"kind": "llm_call", "model": "m"},  # required fields missing
        {
            "kind": "step_started",
            "round": 1,
            "tokens": 5,  # a key the kind does not declare
        },
        {"kind": "step_started", "round": "first"},  # a wrong type
        {"kind": "untyped", "data": {}},  # only readers make untyped details
        {"kind": "truncated", "original_kind": "x", "original_bytes": 1, "preview": ""},
        {"model": "m"},  # no kind
    ],
)
def test_a_producer_cannot_write_an_undeclared_kind_or_shape(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_produced(data)


def test_models_refuse_undeclared_fields_when_built() -> None:
    with pytest.raises(ValidationError):
        StepStartedDetails(round=1, extra_field=True)


def test_produced_details_round_trip_through_json() -> None:
    details = RegenerationRequestedDetails(
        user_id=uuid.uuid4(), kinds=[ContentKind.quiz], with_instructions=True
    )
    data = details.model_dump(mode="json", exclude_none=True)
    assert data["kind"] == "regeneration_requested"
    assert parse_produced(data) == details
    assert parse_stored(data) == details


def test_step_details_carry_the_step_info_fields() -> None:
    info = StepInfo(round=2, errors=["cycle"], concepts=5)
    started = StepStartedDetails(**info.model_dump())
    assert (started.round, started.errors, started.concepts) == (2, ["cycle"], 5)


@pytest.mark.parametrize(
    "stored",
    [
        {},  # an event logged before details had kinds, with none
        {"i": 3, "model": "m"},  # one with the old free-form details
        {"_truncated": True, "original_bytes": 9000, "preview": "{"},  # the old marker
        {"kind": "llm_call", "model": "m"},  # a declared kind in a shape it no longer has
        {"kind": "some_future_kind", "x": 1},
    ],
)
def test_stored_rows_that_fit_no_kind_are_read_as_untyped(stored: dict[str, Any]) -> None:
    assert parse_stored(stored) == UntypedDetails(data=stored)


def test_stored_truncation_markers_are_typed() -> None:
    marker = {"kind": "truncated", "original_kind": "llm_call", "original_bytes": 9000}
    parsed = parse_stored({**marker, "preview": "{", "trace_id": "ab"})
    assert parsed == TruncatedDetails(
        original_kind="llm_call", original_bytes=9000, preview="{", trace_id="ab"
    )


def test_llm_call_ids_are_typed() -> None:
    item = uuid.uuid4()
    parsed = parse_produced(
        {
            "kind": "llm_call",
            "model": "m",
            "prompt_tokens": 3,
            "completion_tokens": 4,
            "cost_usd": "0.001",
            "outcome": "ok",
            "item_id": str(item),
        }
    )
    assert isinstance(parsed, LlmCallDetails)
    assert parsed.item_id == item
