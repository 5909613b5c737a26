"""The OpenAPI document, adjusted to what the API really answers.

FastAPI describes every error response as ``application/json`` and validation errors with
its own schema; ours are ``application/problem+json`` with :class:`Problem`. Beyond that
this module adds what FastAPI cannot know from the routes:

- the two ways to authenticate (access token, API key — both ``Authorization: Bearer``),
  and ``security: []`` on public operations;
- the headers every response carries (``X-Request-ID``) and the ones some carry
  (``Retry-After`` on 429/503, ``WWW-Authenticate`` on 401, ``Location`` on a submit);
- the errors any route can answer: 500 everywhere, 503 where a backend is used, 400 and
  413 where there is a body;
- the event stream: every event type with its payload model (``roadmap_core.progress``,
  the classes the server emits with) as the ``text/event-stream`` item schema.

The committed snapshot of this document (``services/api/openapi.json``) is what clients
are generated from; ``uv run roadmap openapi`` rewrites it (docs/api.md).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from roadmap_api.errors import PROBLEM_JSON
from roadmap_api.responses import DESCRIPTIONS
from roadmap_core.chat import CHAT_EVENT_MODELS
from roadmap_core.progress import EVENT_MODELS

# The contract's own version (semantic): a breaking change of the document needs a new
# major version and a `services/api/CHANGELOG.md` entry (checked by `roadmap openapi --check`).
API_VERSION = "2.3.0"

PROBLEM_REF = "#/components/schemas/Problem"
NO_BACKEND = {"/healthz", "/metrics", "/openapi.json"}
EVENTS_PATH = "/api/v1/roadmaps/{roadmap_id}/events"
CHAT_EVENTS_PATH = "/api/v1/roadmaps/{roadmap_id}/chat/events"
FASTAPI_SCHEME = "OAuth2PasswordBearer"

SECURITY_SCHEMES: dict[str, Any] = {
    "accessToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from `POST /api/v1/auth/token` (OAuth2 password"
        " grant), sent as `Authorization: Bearer <token>`.",
    },
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "API key (rmk_…)",
        "description": "An API key from `POST /api/v1/me/api-keys`, sent the same way:"
        " `Authorization: Bearer rmk_…`.",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The scrape token of `/metrics` (the `METRICS_TOKEN` setting), sent as"
        " `Authorization: Bearer <token>`.",
    },
}
# Operations with a credential of their own (not a user's).
OWN_SCHEME: dict[str, list[dict[str, list[str]]]] = {"metrics_scrape": [{"metricsToken": []}]}
AUTHENTICATED: list[dict[str, list[str]]] = [{"accessToken": []}, {"apiKey": []}]

HEADERS: dict[str, Any] = {
    "X-Request-ID": {
        "description": "The request's id (yours, if you sent a valid `X-Request-ID`): quote"
        " it when reporting a problem; every log line of the request carries it.",
        "required": True,
        "schema": {"type": "string", "maxLength": 64},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "WWW-Authenticate": {
        "description": "The authentication scheme (`Bearer`), and why the credentials failed.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "The new roadmap (same as `links.self`).",
        "required": True,
        "schema": {"type": "string"},
    },
}

# Sent by every response of a deprecated operation (roadmap_api/deprecation.py).
DEPRECATION_HEADERS: dict[str, Any] = {
    "Deprecation": {
        "description": "When the operation was deprecated: `@` and a Unix time (RFC 9745).",
        "required": True,
        "schema": {"type": "string"},
    },
    "Sunset": {
        "description": "When the operation stops working, an HTTP date (RFC 8594).",
        "required": True,
        "schema": {"type": "string"},
    },
    "Link": {
        "description": 'The changelog entry that announced it (`rel="deprecation"`).',
        "required": True,
        "schema": {"type": "string"},
    },
}

EVENTS_DESCRIPTION = (
    "Server-Sent Events. The first event is a `snapshot` (unless `Last-Event-ID` resumes"
    " without a gap), then `status`, `step`, `item` and `review_required` as they happen,"
    " and one terminal event last: `completed`, `failed` or `cancelled`. Each event's"
    " `event:` field is its type and `data:` its payload as JSON (the schemas named"
    " `<Type>Event`); ids are stream positions: reconnect with `Last-Event-ID` to resume."
    " A `: ping` comment keeps an idle stream alive. A stream that ends because a backing"
    " service failed sends a `retry:` hint first: reconnect after it."
)


CHAT_EVENTS_DESCRIPTION = (
    "Server-Sent Events of the roadmap's mentor chat: for every answer, `delta` events (the"
    " next piece of text, `index` counting from 0 per answer; an answer whose worker was"
    " replaced starts again at 0) and then one `message` event with the answer as stored"
    " (`done`, or `failed` with its `error`). Each event's `event:` field is its type and"
    " `data:` its payload as JSON (`ChatDeltaEvent`, `ChatMessageEvent`); ids are stream"
    " positions: reconnect with `Last-Event-ID` to resume. The stream stays open for the"
    " next question; a `: ping` comment keeps it alive."
)


STREAMS = {
    EVENTS_PATH: (EVENTS_DESCRIPTION, "ProgressStreamItem"),
    CHAT_EVENTS_PATH: (CHAT_EVENTS_DESCRIPTION, "ChatStreamItem"),
}


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}


def _header(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/headers/{name}"}


def _stream_item(title: str, description: str, models: dict[Any, Any]) -> dict[str, Any]:
    return {
        "title": title,
        "description": description,
        "oneOf": [
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"const": kind.value},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"$ref": f"#/components/schemas/{model.__name__}"},
                    },
                    "id": {"type": "string", "pattern": "^[0-9]+-[0-9]+$"},
                    "retry": {"type": "integer", "minimum": 0},
                },
            }
            for kind, model in models.items()
        ],
    }


def _event_schemas() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Component schemas of the event payloads, and the streams' item schemas."""
    models = [
        (model, "serialization") for model in (*EVENT_MODELS.values(), *CHAT_EVENT_MODELS.values())
    ]
    _, top = models_json_schema(models, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    items = {
        "ProgressStreamItem": _stream_item(
            "ProgressStreamItem",
            "One event of a roadmap's progress stream, as its wire fields: `event`"
            " (the type), `data` (the payload as JSON), `id` (the stream position) and `retry`.",
            EVENT_MODELS,
        ),
        "ChatStreamItem": _stream_item(
            "ChatStreamItem",
            "One event of a roadmap's chat stream, as its wire fields (like `ProgressStreamItem`).",
            CHAT_EVENT_MODELS,
        ),
    }
    return top.get("$defs", {}), items


def _adjust(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    event_defs, event_items = _event_schemas()
    for name, definition in event_defs.items():
        schemas.setdefault(name, definition)
    schemas.update(event_items)
    components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    components["headers"] = copy.deepcopy(HEADERS)
    schema["security"] = AUTHENTICATED

    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            requirements = operation.get("security", [])
            secured = any(FASTAPI_SCHEME in r for r in requirements)
            # A route may narrow it (``openapi_extra``), e.g. to access tokens only.
            narrowed = [r for r in requirements if FASTAPI_SCHEME not in r]
            operation["security"] = (narrowed or AUTHENTICATED) if secured else []
            own = OWN_SCHEME.get(operation.get("operationId", ""))
            if own is not None:
                operation["security"] = own
                # The credential is the scheme's; OpenAPI ignores an `Authorization` parameter.
                parameters = [
                    p
                    for p in operation.get("parameters", [])
                    if not (
                        p.get("in") == "header" and p.get("name", "").lower() == "authorization"
                    )
                ]
                if parameters:
                    operation["parameters"] = parameters
                else:
                    operation.pop("parameters", None)
            responses = operation.setdefault("responses", {})
            if secured:
                responses.setdefault("401", {"description": DESCRIPTIONS[401]})
            if path not in NO_BACKEND:
                responses.setdefault("503", {"description": DESCRIPTIONS[503]})
            if "requestBody" in operation:
                responses.setdefault("413", {"description": DESCRIPTIONS[413]})
                # A body that is not JSON at all (not UTF-8, or malformed) is a 400.
                responses.setdefault("400", {"description": DESCRIPTIONS[400]})
            responses.setdefault("500", {"description": DESCRIPTIONS[500]})
            for code, response in responses.items():
                _adjust_response(path, int(code), response)
                if operation.get("deprecated"):
                    # Only a document with a deprecated operation declares these headers.
                    components["headers"].update(copy.deepcopy(DEPRECATION_HEADERS))
                    for name in DEPRECATION_HEADERS:
                        response["headers"][name] = _header(name)
            stream = STREAMS.get(path)
            if stream is not None:
                # OpenAPI 3.1 has no item schema for a stream (3.2's ``itemSchema``): the
                # events are the string's ``contentSchema``, a component clients can use.
                description, item = stream
                responses["200"]["content"] = {
                    "text/event-stream": {
                        "schema": {
                            "type": "string",
                            "description": description,
                            "contentMediaType": "text/event-stream",
                            "contentSchema": {"$ref": f"#/components/schemas/{item}"},
                        }
                    }
                }
            if operation.get("operationId") == "roadmaps_create":
                responses["202"].setdefault("headers", {})["Location"] = _header("Location")
    return schema


def _adjust_response(path: str, code: int, response: dict[str, Any]) -> None:
    content = response.get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    is_problem = code == 422 or ref == PROBLEM_REF or (code >= 400 and not content)
    if is_problem:
        response["content"] = _problem_content()
        response["description"] = DESCRIPTIONS.get(code, response["description"])
    headers = response.setdefault("headers", {})
    headers["X-Request-ID"] = _header("X-Request-ID")
    if is_problem and code in (429, 503):
        headers["Retry-After"] = _header("Retry-After")
    if code == 401:
        headers["WWW-Authenticate"] = _header("WWW-Authenticate")


def build_document(app: FastAPI) -> dict[str, Any]:
    return _adjust(
        get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
            contact=app.contact,
            license_info=app.license_info,
        )
    )


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
