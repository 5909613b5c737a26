"""The API contract: the committed OpenAPI snapshot and the clients generated from it are
what the code produces, the document is typed and readable, and the breaking-change rule
refuses what it should."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from roadmap_client import OPERATIONS
from roadmap_core.logdetails import StoredLogDetails, kinds_of
from roadmap_dev import contract
from roadmap_dev.paths import find_repo_root

ROOT = find_repo_root()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / contract.SNAPSHOT).read_text(encoding="utf-8"))
    return loaded


def test_snapshot_and_generated_clients_are_current() -> None:
    outcome = contract.sync(check=True, require_typescript=False)
    assert outcome.problems == [], "\n".join(outcome.problems)


def test_operation_ids_are_noun_verb_and_the_client_calls_each(document: dict[str, Any]) -> None:
    operations = {
        op["operationId"]: (method.upper(), path)
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)+", name) for name in operations), operations
    assert operations == OPERATIONS


def test_security_servers_info_and_headers(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert {name: s["scheme"] for name, s in schemes.items()} == {
        "accessToken": "bearer",
        "apiKey": "bearer",
        "metricsToken": "bearer",
    }
    assert document["servers"]
    assert document["info"]["license"]["name"]
    assert document["info"]["contact"]["name"]
    public = {"auth_register", "auth_token_create", "health_live", "health_ready"}
    password_login_only = {"password_change", "api_keys_list", "api_keys_create", "api_keys_revoke"}
    for item in document["paths"].values():
        for op in item.values():
            if op["operationId"] in public:
                assert op["security"] == [], op["operationId"]
            elif op["operationId"] == "metrics_scrape":
                assert op["security"] == [{"metricsToken": []}]
                assert "parameters" not in op
            elif op["operationId"] in password_login_only:
                assert op["security"] == [{"accessToken": []}], op["operationId"]
            else:
                assert op["security"] == [{"accessToken": []}, {"apiKey": []}]
            if op["security"]:
                assert "401" in op["responses"]
            for code, response in op["responses"].items():
                assert "X-Request-ID" in response["headers"], (op["operationId"], code)
                if code in ("429",) or (code == "503" and op["operationId"] != "health_ready"):
                    assert "Retry-After" in response["headers"], (op["operationId"], code)
                if code.startswith(("4", "5")) and op["operationId"] != "health_ready":
                    assert "application/problem+json" in response["content"], (op, code)
    created = document["paths"]["/api/v1/roadmaps"]["post"]["responses"]["202"]
    assert "Location" in created["headers"]


def test_nothing_untyped_but_what_says_free_form(document: dict[str, Any]) -> None:
    untyped = []

    def walk(schema: Any, where: str) -> None:
        if isinstance(schema, dict):
            typed = ("properties", "patternProperties")
            if schema.get("type") == "object" and not any(k in schema for k in typed):
                extra = schema.get("additionalProperties", True)
                if extra in (True, {}) and "free-form" not in schema.get("description", "").lower():
                    untyped.append(where)
            for key, value in schema.items():
                walk(value, f"{where}.{key}")
        elif isinstance(schema, list):
            for i, value in enumerate(schema):
                walk(value, f"{where}[{i}]")

    walk(document["components"]["schemas"], "schemas")
    assert untyped == []
    schemas = document["components"]["schemas"]
    assert schemas["RoadmapDetail"]["properties"]["request"]["$ref"].endswith("/RoadmapRequest")
    content = schemas["ConceptOut"]["properties"]["content"]["additionalProperties"]
    assert content["discriminator"]["propertyName"] == "kind"
    assert set(content["discriminator"]["mapping"]) == {"tutorial", "resources", "quiz"}
    details = schemas["LogOut"]["properties"]["details"]
    assert details["discriminator"]["propertyName"] == "kind"
    assert set(details["discriminator"]["mapping"]) == set(kinds_of(StoredLogDetails))
    stream = document["paths"]["/api/v1/roadmaps/{roadmap_id}/events"]["get"]["responses"]
    assert "204" in stream
    item = schemas["ProgressStreamItem"]["oneOf"]
    assert {branch["properties"]["event"]["const"] for branch in item} == {
        "snapshot", "status", "step", "item", "review_required", "completed", "failed",
        "cancelled",
    }  # fmt: skip


def _doc(**schemas: Any) -> dict[str, Any]:
    return {
        "info": {"version": "1.2.0"},
        "paths": {"/a": {"get": {"operationId": "a_get", "parameters": []}}},
        "components": {"schemas": schemas},
    }


THING = {"type": "object", "properties": {"x": {"type": "string"}, "kind": {"enum": ["a", "b"]}}}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["paths"].pop("/a"), "path /a removed"),
        (lambda d: d["paths"]["/a"]["get"].update(operationId="a_read"), "operationId"),
        (lambda d: d["components"]["schemas"]["Thing"]["properties"].pop("x"), "`x` removed"),
        (lambda d: d["components"]["schemas"]["Thing"]["properties"]["kind"].update(enum=["a"]),
         "enum value 'b' removed"),
        (lambda d: d["components"]["schemas"]["Thing"].update(required=["x"]), "became required"),
        (lambda d: d["paths"]["/a"]["get"]["parameters"].append(
            {"in": "query", "name": "q", "required": True}), "parameter `q` became required"),
        (lambda d: d["components"]["schemas"].pop("Thing"), "schema Thing removed"),
        (lambda d: d["components"]["schemas"]["Thing"]["properties"]["x"].update(type="integer"),
         "type 'string' changed to 'integer'"),
    ],
)  # fmt: skip
def test_breaking_changes_need_a_major_version_and_a_changelog_entry(
    change: Any, expected: str
) -> None:
    old = _doc(Thing=copy.deepcopy(THING))
    new = copy.deepcopy(old)
    change(new)
    problems = contract.judge(old, new, changelog="")
    assert any("major version" in p for p in problems), problems
    assert any(expected in p for p in problems), problems

    new["info"]["version"] = "2.0.0"
    assert contract.judge(old, new, changelog="## 2.0.0\n\nBreaking: x is gone.\n") == []
    # A new major version alone is not enough: the changelog must say what broke.
    assert contract.judge(old, new, changelog="## 2.0.0\n\nTidy-ups.\n")


def test_additions_are_not_breaking() -> None:
    old = _doc(Thing=copy.deepcopy(THING))
    new = copy.deepcopy(old)
    new["paths"]["/b"] = {"post": {"operationId": "b_create"}}
    new["components"]["schemas"]["Thing"]["properties"]["y"] = {"type": "integer"}
    new["components"]["schemas"]["Thing"]["properties"]["kind"]["enum"].append("c")
    new["components"]["schemas"]["Other"] = {"type": "object", "properties": {}}
    assert contract.breaking_changes(old, new) == []
    assert contract.judge(old, new, changelog="") == []


def test_a_free_form_object_given_its_kinds_is_not_breaking() -> None:
    free_form = {"type": "object", "additionalProperties": True, "description": "Free-form"}
    old = _doc(Log=copy.deepcopy({"type": "object", "properties": {"details": free_form}}))
    new = copy.deepcopy(old)
    new["components"]["schemas"]["Log"]["properties"]["details"] = {
        "oneOf": [{"$ref": "#/components/schemas/A"}, {"$ref": "#/components/schemas/B"}],
        "discriminator": {"propertyName": "kind"},
    }
    assert contract.breaking_changes(old, new) == []
