"""JSON schemas for structured outputs, in the subset strict mode accepts.

OpenAI's strict structured outputs want every property listed in ``required``,
``additionalProperties: false`` on every object and no ``default``; some keywords
(string lengths, ``format: uri``) are rejected or ignored by some providers. We
send this reduced schema to steer the model, and enforce the full pydantic model
on the answer anyway: the model's output is untrusted whatever the schema said.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

from pydantic import BaseModel

# Keywords kept per JSON type; anything else is dropped from the wire schema.
_KEEP: Final = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "$ref",
        "$defs",
        "anyOf",
        "description",
        "pattern",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
    }
)
_STRICT_FORMATS: Final = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "format" and value in _STRICT_FORMATS:
            out[key] = value
        elif key in {"properties", "$defs"}:
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key in _KEEP:
            out[key] = _strict(value)
    if out.get("type") == "object" and "properties" in out:
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out


@cache
def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return dict(_strict(model.model_json_schema()))


def schema_name(model: type[BaseModel]) -> str:
    """The ``json_schema.name`` sent for ``model`` (the fake LLM keys on it too)."""
    return model.__name__


def response_format(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": schema_name(model),
            "schema": strict_json_schema(model),
            "strict": True,
        },
    }
