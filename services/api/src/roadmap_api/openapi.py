"""The OpenAPI document, adjusted to what the API really answers.

FastAPI describes every error response as ``application/json`` and validation errors with
its own schema; ours are ``application/problem+json`` with :class:`Problem`. Outages (503)
can happen on any route that uses the database or Redis, and 413 or 400 (unparseable) on any
route with a body.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from roadmap_api.errors import PROBLEM_JSON
from roadmap_api.responses import DESCRIPTIONS

PROBLEM_REF = "#/components/schemas/Problem"
NO_BACKEND = {"/healthz", "/readyz", "/metrics", "/openapi.json"}


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}


def _adjust(schema: dict[str, Any]) -> dict[str, Any]:
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                content = response.get("content", {})
                json_body = content.get("application/json", {})
                ref = json_body.get("schema", {}).get("$ref", "")
                if code == "422" or ref == PROBLEM_REF:
                    response["content"] = _problem_content()
                    response["description"] = DESCRIPTIONS.get(int(code), response["description"])
            if path not in NO_BACKEND:
                responses.setdefault(
                    "503", {"description": DESCRIPTIONS[503], "content": _problem_content()}
                )
            if "requestBody" in operation:
                responses.setdefault(
                    "413", {"description": DESCRIPTIONS[413], "content": _problem_content()}
                )
                # A body that is not parseable at all (not UTF-8 JSON) is a 400, not a 422.
                responses.setdefault(
                    "400", {"description": DESCRIPTIONS[400], "content": _problem_content()}
                )
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _adjust(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
