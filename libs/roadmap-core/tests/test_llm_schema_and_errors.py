from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from roadmap_core.domain import Framework, IntentAnalysis, Quiz, ResourceList, Tutorial
from roadmap_core.llm import LLMError, LLMErrorReason, response_format, strict_json_schema
from roadmap_core.llm.errors import redact, register_secret


def walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for v in node.values():
            found += walk(v)
    elif isinstance(node, list):
        for v in node:
            found += walk(v)
    return found


@pytest.mark.parametrize("model", [IntentAnalysis, Framework, Tutorial, ResourceList, Quiz])
def test_wire_schema_is_strict_mode_compatible(model: type) -> None:
    schema = strict_json_schema(model)
    for node in walk(schema):
        if node.get("type") == "object" and "properties" in node:
            assert node["additionalProperties"] is False
            assert set(node["required"]) == set(node["properties"])
        assert "default" not in node
        assert node.get("format") != "uri"
        assert "minLength" not in node
        assert "maxLength" not in node
    fmt = response_format(model)
    assert fmt["json_schema"]["name"] == model.__name__
    assert fmt["json_schema"]["strict"] is True
    json.dumps(fmt)


def test_wire_schema_keeps_constraints_the_model_can_follow() -> None:
    schema = strict_json_schema(Framework)
    concept = schema["$defs"]["Concept"]["properties"]
    assert concept["id"]["pattern"].startswith("^[a-z0-9]")
    assert concept["difficulty"]["minimum"] == 1
    assert concept["difficulty"]["maximum"] == 5


def test_retryable_defaults_per_reason() -> None:
    retryable = {r for r in LLMErrorReason if LLMError(r, "x").retryable}
    assert retryable == {
        LLMErrorReason.rate_limited,
        LLMErrorReason.server_error,
        LLMErrorReason.timeout,
        LLMErrorReason.connection,
        LLMErrorReason.malformed_output,
        LLMErrorReason.invalid_schema,
    }
    assert LLMError(LLMErrorReason.refusal, "x", retryable=True).retryable


def test_errors_never_carry_keys() -> None:
    register_secret("my-very-own-key-123")
    err = LLMError(
        LLMErrorReason.auth,
        "bad key my-very-own-key-123 / sk-abcdefghijklmnop / Bearer abc.def.ghi.jkl",
    )
    assert "my-very-own-key-123" not in str(err)
    assert "sk-abcdefghijklmnop" not in str(err)
    assert "abc.def.ghi.jkl" not in str(err)
    assert redact("Bearer abcdefghijk") == "Bearer ***"


def test_errors_survive_pickling_for_celery() -> None:
    err = LLMError(
        LLMErrorReason.rate_limited,
        "slow down",
        status_code=429,
        retry_after_s=2.5,
        request_id="r1",
    )
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own object
    assert copy.as_dict() == err.as_dict()
    assert isinstance(copy, LLMError)
    assert copy.retryable
