"""Text PostgreSQL can store: the type of every string that comes from outside.

PostgreSQL stores any Unicode scalar value in ``text`` and ``jsonb`` except U+0000 (NUL):
``text`` refuses the byte, ``jsonb`` the ``\\u0000`` escape. Lone surrogates
(U+D800-U+DFFF) cannot be encoded as UTF-8 at all; pydantic already refuses them in every
``str`` field (``string_unicode``), from JSON and from Python alike. Every other code point
(controls, noncharacters, private use) is stored as sent.

``STORABLE`` adds that check to a ``str`` type; put it after the field's own constraints
(pydantic applies metadata in order, and constraints placed after a validator lose their
string meaning): ``Annotated[str, StringConstraints(max_length=200), STORABLE]``, or
``StorableStr`` for a string without other constraints. A refused value answers 422
naming the field, before anything is written, instead of failing the statement that
would have stored it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

NUL = "\x00"
# Documents the rule in the JSON schema (clients and schema-driven test generators read it).
NO_NUL_PATTERN = "^[^\\u0000]*$"


T = TypeVar("T")


def refuse_unstorable(value: T) -> T:
    # Also placed on optional fields (``str | None``): only strings are checked.
    if isinstance(value, str) and NUL in value:
        raise PydanticCustomError(
            "text_nul", "NUL characters (U+0000) cannot be stored; remove them"
        )
    return value


@dataclass(frozen=True, slots=True)
class _Storable:
    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(refuse_unstorable, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        # A field with a pattern of its own (a language tag, say) already excludes NUL.
        json_schema.setdefault("pattern", NO_NUL_PATTERN)
        return json_schema


STORABLE = _Storable()
StorableStr = Annotated[str, STORABLE]
