"""The web UI: Starlette routes rendering Jinja2 pages from what the API answers.

Every page is one or a few API calls through ``roadmap_client`` with the signed-in user's
token (from the session cookie), rendered on the server. The only script (static/app.js)
follows a roadmap's progress through ``/roadmaps/{id}/events``, which relays the API's
event stream with the browser's ``Last-Event-ID`` so a dropped connection resumes.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlencode

import httpx
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roadmap_client import AsyncRoadmapClient
from roadmap_client.errors import (
    ApiError,
    NotFound,
    RateLimited,
    StreamLost,
    Unauthenticated,
    ValidationFailed,
)
from roadmap_client.events import Event
from roadmap_client.models import ConceptOut, QuizAttemptOut
from roadmap_web import markdown, session
from roadmap_web.settings import WebSettings

STATIC = Path(__file__).parent / "static"
KINDS: tuple[Literal["tutorial", "resources", "quiz"], ...] = ("tutorial", "resources", "quiz")
RUNNING = frozenset({"queued", "planning", "generating"})
STATUS_TEXT = {
    "queued": "Queued",
    "planning": "Planning",
    "awaiting_review": "Waiting for your review",
    "generating": "Writing the content",
    "completed": "Completed",
    "partial_failure": "Completed, with failures",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
STEP_TEXT = {
    "queued": "waiting for a worker",
    "intent_analysis": "understanding your goal",
    "curriculum_design": "designing the curriculum",
    "validation": "checking the plan",
    "repair": "repairing the plan",
    "awaiting_review": "waiting for your review",
    "revision": "revising the plan",
    "content_generation": "writing tutorials, resources and quizzes",
    "done": "done",
}
PROGRESS_TEXT = {"not_started": "Not started", "in_progress": "In progress", "done": "Done"}
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Adds the headers above to every response (a pure ASGI wrapper: streams stay streams)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _when(value: dt.datetime | str | None) -> str:
    if not value:
        return ""
    moment = value
    if isinstance(value, str):  # a field the client's models do not type (yet)
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    assert isinstance(moment, dt.datetime)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _percent(value: Any) -> str:
    """A fraction as a percentage (the generated models wrap bounded numbers in ``.root``)."""
    value = getattr(value, "root", value)
    return "" if value is None else f"{round(float(value) * 100)}%"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("roadmap_web"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["when"] = _when
    env.filters["percent"] = _percent
    env.filters["markdown"] = markdown.render
    env.globals.update(
        concepts_ready=concepts_ready,
        STATUS_TEXT=STATUS_TEXT,
        STEP_TEXT=STEP_TEXT,
        PROGRESS_TEXT=PROGRESS_TEXT,
        KINDS=KINDS,
    )
    return env


def field_errors(error: ApiError, fields: Sequence[str], default: str) -> dict[str, list[str]]:
    """The problem's ``errors`` by form field (the last name in ``loc`` that is a field)."""
    found: dict[str, list[str]] = {}
    for item in error.body.get("errors") or []:
        loc = [part for part in item.get("loc", []) if isinstance(part, str)]
        message = str(item.get("msg", "is not valid")).removeprefix("Value error, ")
        # A check across fields reports the whole body; its message starts with the field.
        named = next((f for f in fields if message.startswith(f + " ")), default)
        name = next((part for part in reversed(loc) if part in fields), named)
        found.setdefault(name, []).append(message)
    if not found:
        found[default] = [str(error.body.get("detail") or error.body.get("title") or error)]
    return found


def parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class Web:
    """The routes; one per process, holding the template environment and the API client."""

    def __init__(
        self, settings: WebSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.env = _environment()
        # One connection pool for the process; each request uses a shallow copy carrying
        # its user's token (the copies share the pool, never the token).
        self.api = AsyncRoadmapClient(
            settings.api_url, timeout=settings.api_timeout_s, transport=transport
        )
        self.secret = settings.secret()
        self.js_bytes = sum(p.stat().st_size for p in STATIC.glob("*.js"))

    def client(self, request: Request) -> AsyncRoadmapClient:
        api = copy.copy(self.api)
        api.token = session.session_token(request)
        return api

    # -- rendering ----------------------------------------------------------------------

    def page(
        self,
        request: Request,
        template: str,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        browser, new = session.browser_key(request)
        html = self.env.get_template(template).render(
            request_path=request.url.path,
            signed_in=session.session_token(request) is not None,
            csrf_field=session.CSRF_FIELD,
            csrf_token=session.form_token(self.secret, browser),
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        if new:
            session.set_browser_key(response, browser, secure=self.settings.cookie_secure)
        return response

    def not_found(self, request: Request) -> HTMLResponse:
        return self.page(request, "not_found.html", 404)

    def signed_out(self, request: Request) -> Response:
        """The API refused the session's token (expired, revoked): back to sign in."""
        response = RedirectResponse(f"/sign-in?next={request.url.path}", status_code=303)
        session.clear_session(response, secure=self.settings.cookie_secure)
        return response

    def api_failed(self, request: Request, error: ApiError) -> Response:
        if isinstance(error, NotFound):
            return self.not_found(request)
        if isinstance(error, Unauthenticated):
            return self.signed_out(request)
        status = 503 if error.status in (0, 503) or error.status >= 500 else error.status
        message = (
            "Too many requests; wait a moment and try again."
            if isinstance(error, RateLimited)
            else str(error.body.get("detail") or error.body.get("title") or "The API refused.")
        )
        return self.page(request, "error.html", status, message=message)

    def unreachable(self, request: Request) -> Response:
        return self.page(
            request, "error.html", 503, message="The Roadmap Agent API is not reachable right now."
        )

    async def checked_form(self, request: Request) -> FormData | None:
        """The submitted form, or ``None`` when its cross-site token is missing or wrong."""
        form = await request.form()
        token = form.get(session.CSRF_FIELD)
        if not isinstance(token, str) or not session.form_token_valid(self.secret, request, token):
            return None
        return form

    def refused(self, request: Request) -> HTMLResponse:
        return self.page(
            request,
            "error.html",
            403,
            message="This form expired or did not come from this site. Reload the page and try again.",
        )

    # -- pages --------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        target = "/roadmaps" if session.session_token(request) else "/sign-in"
        return RedirectResponse(target, status_code=303)

    async def sign_up(self, request: Request) -> Response:
        if request.method == "GET":
            return self.page(request, "sign_up.html", values={}, errors={})
        form = await self.checked_form(request)
        if form is None:
            return self.refused(request)
        email = str(form.get("email", "")).strip()
        password = str(form.get("password", ""))
        name = str(form.get("display_name", "")).strip() or None
        values = {"email": email, "display_name": name or ""}
        api = self.client(request)
        api.token = None
        try:
            await api.register(email, password, name)
            token = await api.login(email, password)
        except ValidationFailed as exc:
            errors = field_errors(exc, ("email", "password", "display_name"), "email")
            return self.page(request, "sign_up.html", 422, values=values, errors=errors)
        except ApiError as exc:
            if exc.status == 409:
                errors = {"email": ["An account with this email already exists; sign in."]}
                return self.page(request, "sign_up.html", 409, values=values, errors=errors)
            return self.api_failed(request, exc)
        return self.start_session(token.access_token, token.expires_in, "/roadmaps")

    async def sign_in(self, request: Request) -> Response:
        next_path = request.query_params.get("next", "")
        if request.method == "GET":
            return self.page(request, "sign_in.html", values={}, errors={}, next=next_path)
        form = await self.checked_form(request)
        if form is None:
            return self.refused(request)
        email = str(form.get("email", "")).strip()
        password = str(form.get("password", ""))
        next_path = str(form.get("next", ""))
        api = self.client(request)
        api.token = None
        try:
            token = await api.login(email, password)
        except (Unauthenticated, ValidationFailed):
            errors = {"password": ["Wrong email or password."]}
            return self.page(
                request, "sign_in.html", 401, values={"email": email}, errors=errors, next=next_path
            )
        except ApiError as exc:
            return self.api_failed(request, exc)
        # Only a path of this site: never an open redirect to another host.
        target = next_path if next_path.startswith("/") and not next_path.startswith("//") else ""
        return self.start_session(token.access_token, token.expires_in, target or "/roadmaps")

    def start_session(self, token: str, expires_in: int | None, target: str) -> Response:
        response = RedirectResponse(target, status_code=303)
        session.set_session(response, token, expires_in or 3600, secure=self.settings.cookie_secure)
        return response

    async def sign_out(self, request: Request) -> Response:
        if await self.checked_form(request) is None:
            return self.refused(request)
        response = RedirectResponse("/sign-in", status_code=303)
        session.clear_session(response, secure=self.settings.cookie_secure)
        return response

    async def roadmaps(self, request: Request) -> Response:
        cursor = request.query_params.get("cursor") or None
        page = await self.client(request).list_roadmaps(
            limit=self.settings.roadmaps_per_page, cursor=cursor
        )
        return self.page(request, "roadmaps.html", page=page, first=cursor is None)

    async def new_roadmap(self, request: Request) -> Response:
        today = dt.datetime.now(dt.UTC).date()
        if request.method == "GET":
            values = {
                "level": "beginner",
                "weekly_hours": "5",
                "deadline": (today + dt.timedelta(weeks=8)).isoformat(),
                "language": "en",
            }
            return self.page(request, "new_roadmap.html", values=values, errors={}, today=today)
        form = await self.checked_form(request)
        if form is None:
            return self.refused(request)
        values = {k: str(form.get(k, "")) for k in FORM_FIELDS}
        values["review"] = "on" if form.get("review") else ""
        body, errors = roadmap_request(values, today)
        if not errors:
            try:
                accepted = await self.client(request).create_roadmap(**body)
            except ValidationFailed as exc:
                errors = field_errors(exc, tuple(API_FIELD.values()), "goal")
                errors = {FIELD_OF.get(k, k): v for k, v in errors.items()}
            else:
                return RedirectResponse(f"/roadmaps/{accepted.id}", status_code=303)
        return self.page(
            request, "new_roadmap.html", 422, values=values, errors=errors, today=today
        )

    async def roadmap(self, request: Request) -> Response:
        job_id = parse_id(request.path_params["roadmap_id"])
        if job_id is None:
            return self.not_found(request)
        api = self.client(request)
        roadmap = await api.get_roadmap_json(job_id)
        reviews = await review_history(api, job_id) if roadmap.get("review") else []
        return self.page(
            request,
            "roadmap.html",
            roadmap=roadmap,
            running=roadmap["status"] in RUNNING,
            reviews=reviews,
            concepts=concept_count(roadmap),
            feedback_errors={},
        )

    async def review(self, request: Request) -> Response:
        job_id = parse_id(request.path_params["roadmap_id"])
        if job_id is None:
            return self.not_found(request)
        form = await self.checked_form(request)
        if form is None:
            return self.refused(request)
        approve = form.get("decision") == "approve"
        feedback = str(form.get("feedback", "")).strip() or None
        api = self.client(request)
        try:
            await api.review(job_id, approve=approve, feedback=feedback)
        except (ValidationFailed, ApiError) as exc:
            if exc.status not in (409, 422):
                raise
            roadmap = await api.get_roadmap_json(job_id)
            return self.page(
                request,
                "roadmap.html",
                exc.status,
                roadmap=roadmap,
                running=roadmap["status"] in RUNNING,
                reviews=await review_history(api, job_id),
                concepts=concept_count(roadmap),
                feedback_errors=field_errors(exc, ("feedback",), "feedback"),
                feedback=feedback or "",
            )
        return RedirectResponse(f"/roadmaps/{job_id}", status_code=303)

    async def events(self, request: Request) -> Response:
        """The roadmap's progress stream. The API sends its snapshot at once, so the first
        event is read before answering: a missing roadmap gets a plain 404 (EventSource
        then stops), a stream that already ended a 204."""
        job_id = parse_id(request.path_params["roadmap_id"])
        if job_id is None:
            return Response(status_code=404)
        last_id = request.headers.get("last-event-id") or None
        # No reconnects here: when the API's stream drops, this response ends and the
        # browser's EventSource reconnects with the last id it saw, which is passed on.
        stream = self.client(request).events(job_id, last_event_id=last_id, reconnects=0)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            return Response(status_code=204)
        except (StreamLost, httpx.TransportError):
            return Response(status_code=503, headers={"retry-after": "2"})
        except ApiError as exc:
            return Response(status_code=exc.status)
        return sse_response(relay(stream, first))

    async def chat_events(self, request: Request) -> Response:
        """The mentor chat's stream (deltas, then the whole message), from the position the
        question was asked at (``?after=``) or the last event the browser saw."""
        job_id = parse_id(request.path_params["roadmap_id"])
        if job_id is None:
            return Response(status_code=404)
        after = request.headers.get("last-event-id") or request.query_params.get("after")
        stream = self.client(request).events(
            job_id, last_event_id=after or None, reconnects=0, operation="chat_events_follow"
        )
        return sse_response(relay(stream, None))

    async def chat(self, request: Request) -> Response:
        ids = self.concept_ids(request)
        if ids is None:
            return self.not_found(request)
        form = await self.checked_form(request)
        if form is None:
            return self.refused(request)
        question = str(form.get("content", "")).strip()
        api = self.client(request)
        try:
            accepted = await api.post_chat_message(ids[0], question, concept_id=ids[1])
        except ApiError as exc:
            if exc.status not in (409, 422, 429):
                raise
            concept = await api.get_concept(*ids)
            context = await concept_context(api, ids, concept)
            context["chat_error"] = (
                "Too many questions at once; wait a moment."
                if exc.status == 429
                else field_errors(exc, ("content",), "content")["content"][0]
            )
            context["chat_draft"] = question
            return self.page(request, "concept.html", exc.status, **context)
        query = urlencode({"answer": str(accepted.answer_id), "after": accepted.last_event_id})
        return RedirectResponse(
            f"/roadmaps/{ids[0]}/concepts/{ids[1]}?{query}#mentor", status_code=303
        )

    async def concept(self, request: Request) -> Response:
        ids = self.concept_ids(request)
        if ids is None:
            return self.not_found(request)
        api = self.client(request)
        concept = await api.get_concept(*ids)
        context = await concept_context(api, ids, concept)
        context["request_query_regenerating"] = request.query_params.get("regenerating") == "1"
        answer, after = request.query_params.get("answer"), request.query_params.get("after")
        if answer and after and parse_id(answer) is not None and re.fullmatch(r"\d+-\d+", after):
            finished = any(
                str(m.id) == answer and m.status in ("done", "failed") for m in context["chat"]
            )
            if not finished:  # else the conversation below shows it whole
                context["awaiting"] = {"answer": answer, "after": after}
        return self.page(request, "concept.html", **context)

    def concept_ids(self, request: Request) -> tuple[uuid.UUID, uuid.UUID] | None:
        job_id = parse_id(request.path_params["roadmap_id"])
        concept_id = parse_id(request.path_params["concept_id"])
        if job_id is None or concept_id is None:
            return None
        return job_id, concept_id

    async def quiz(self, request: Request) -> Response:
        ids = self.concept_ids(request)
        if ids is None:
            return self.not_found(request)
        form = await self.checked_form(request)
        if form is None:
            return self.refused(request)
        api = self.client(request)
        concept = await api.get_concept(*ids)
        quiz = concept.content.get("quiz")
        if quiz is None or quiz.result is None:
            return self.not_found(request)
        questions = quiz.result.body.questions  # type: ignore[union-attr]
        answers: list[int | list[int]] = []
        missing: list[int] = []
        for index, question in enumerate(questions):
            chosen = [
                int(v) for v in form.getlist(f"q{index}") if isinstance(v, str) and v.isdigit()
            ]
            if not chosen:
                missing.append(index)
            answers.append(chosen if question.type == "multiple_choice" else (chosen or [0])[0])
        context = await concept_context(api, ids, concept)
        if missing:
            context["quiz_error"] = "Answer every question before submitting."
            context["quiz_missing"] = missing
            return self.page(request, "concept.html", 422, **context)
        version = quiz.result.version
        try:
            attempt = await api.quiz_attempt(*ids, answers, quiz_version=version)
        except ApiError as exc:
            if exc.status not in (409, 422):
                raise
            context["quiz_error"] = (
                "The quiz was rewritten while you answered it; here is the new one."
                if exc.status == 409
                else str(exc.body.get("detail") or "Those answers were not accepted.")
            )
            return self.page(request, "concept.html", exc.status, **context)
        context.update(attempt=attempt, results=results_by_question(attempt))
        return self.page(request, "concept.html", **context)

    async def progress(self, request: Request) -> Response:
        ids = self.concept_ids(request)
        if ids is None:
            return self.not_found(request)
        form = await self.checked_form(request)
        if form is None:
            return self.refused(request)
        status = str(form.get("status", ""))
        if status not in PROGRESS_TEXT:
            return self.page(request, "error.html", 422, message="Choose a progress status.")
        await self.client(request).set_progress(
            *ids, cast(Literal["not_started", "in_progress", "done"], status)
        )
        return RedirectResponse(f"/roadmaps/{ids[0]}/concepts/{ids[1]}", status_code=303)

    async def regenerate(self, request: Request) -> Response:
        ids = self.concept_ids(request)
        if ids is None:
            return self.not_found(request)
        form = await self.checked_form(request)
        if form is None:
            return self.refused(request)
        kinds = [k for k in KINDS if k in form.getlist("kinds")]
        instructions = str(form.get("instructions", "")).strip() or None
        api = self.client(request)
        try:
            await api.regenerate(*ids, kinds or list(KINDS), instructions)
        except ApiError as exc:
            if exc.status not in (409, 422):
                raise
            concept = await api.get_concept(*ids)
            context = await concept_context(api, ids, concept)
            context["regenerate_error"] = str(
                exc.body.get("detail") or exc.body.get("title") or "Not accepted."
            )
            return self.page(request, "concept.html", exc.status, **context)
        return RedirectResponse(
            f"/roadmaps/{ids[0]}/concepts/{ids[1]}?regenerating=1", status_code=303
        )

    async def log(self, request: Request) -> Response:
        job_id = parse_id(request.path_params["roadmap_id"])
        if job_id is None:
            return self.not_found(request)
        api = self.client(request)
        roadmap = await api.get_roadmap_json(job_id)
        after = request.query_params.get("after") or None
        entries = await api.logs(job_id, after=after, limit=100)
        return self.page(request, "log.html", roadmap=roadmap, entries=entries, after=after)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        # Ready as soon as it serves: a page whose API call fails says so itself, and the
        # web service must not be restarted or taken out of rotation for the API's outage.
        return JSONResponse({"status": "ready", "js_bytes": self.js_bytes})


REVIEW_LOG_WINDOW = 200
FORM_FIELDS = (
    "goal", "weekly_hours", "level", "deadline", "language", "learning_style", "background",
)  # fmt: skip
# Form field → API field (the deadline is sent as a number of weeks).
API_FIELD = {
    "goal": "goal",
    "weekly_hours": "weekly_hours",
    "level": "level",
    "deadline": "weeks",
    "language": "language",
    "learning_style": "learning_style",
    "background": "background",
    "review": "review",
}
FIELD_OF = {v: k for k, v in API_FIELD.items()}


def roadmap_request(
    values: Mapping[str, str], today: dt.date
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The API request from the form. Only what the API cannot be sent is checked here
    (a number that is not one, a date that is not one); the API validates the rest."""
    errors: dict[str, list[str]] = {}
    body: dict[str, Any] = {"goal": values["goal"], "level": values["level"]}
    try:
        hours = float(values["weekly_hours"])
        body["weekly_hours"] = int(hours) if hours.is_integer() else hours
    except ValueError:
        errors["weekly_hours"] = ["Enter a number of hours."]
    try:
        deadline = dt.date.fromisoformat(values["deadline"])
        body["weeks"] = math.ceil((deadline - today).days / 7)
    except ValueError:
        errors["deadline"] = ["Enter a date."]
    for name in ("language", "learning_style", "background"):
        if values[name].strip():
            body[name] = values[name].strip()
    body["review"] = bool(values.get("review"))
    return body, errors


def _concepts(roadmap: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    framework = roadmap.get("framework") or {}
    return [c for s in framework.get("stages", []) for m in s["modules"] for c in m["concepts"]]


# The roadmap pages render the API's JSON as it came (a 100-concept roadmap is parsed in a
# fraction of the time its models take to validate: bench/web.py); the templates read the
# same names either way.
def concepts_ready(roadmap: Mapping[str, Any]) -> int:
    """Concepts whose tutorial, resources and quiz are all written."""
    return sum(
        all((c["content"].get(k) or {}).get("status") == "succeeded" for k in KINDS)
        for c in _concepts(roadmap)
    )


def sse_response(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


async def relay(stream: AsyncIterator[Event], first: Event | None) -> AsyncIterator[str]:
    """The API's events as the browser's EventSource reads them, ids kept for resuming."""
    yield "retry: 2000\n\n"
    event = first
    while True:
        if event is not None:
            lines = f"event: {event.type}\ndata: {json.dumps(event.raw)}\n"
            yield (f"id: {event.id}\n" if event.id else "") + lines + "\n"
        try:
            event = await anext(stream)
        except (StopAsyncIteration, StreamLost, ApiError, httpx.TransportError):
            return


def concept_count(roadmap: Mapping[str, Any]) -> int:
    return len(_concepts(roadmap))


async def review_history(api: AsyncRoadmapClient, job_id: uuid.UUID) -> list[dict[str, Any]]:
    """The plan's review rounds as the execution log tells them (proposed, approved, changes
    requested, revised), oldest first. Planning and review come before any content, so they
    are among the log's first entries: one page is read, whatever the roadmap's size."""
    page = await api.logs(job_id, limit=REVIEW_LOG_WINDOW)
    return [
        {"ts": entry.ts, "message": entry.message, "details": entry.details}
        for entry in page.items
        if entry.category == "review" or entry.step == "review"
    ]


async def concept_context(
    api: AsyncRoadmapClient, ids: tuple[uuid.UUID, uuid.UUID], concept: ConceptOut
) -> dict[str, Any]:
    tutorial = concept.content.get("tutorial")
    html = None
    if tutorial is not None and tutorial.result is not None:
        html = markdown.render(tutorial.result.body.markdown)  # type: ignore[union-attr]
    attempts = await api.quiz_attempts(*ids, limit=5) if concept.quiz_attempts else None
    chat = await api.chat_messages(ids[0], limit=20)
    return {
        "chat": chat.items,
        "roadmap_id": ids[0],
        "concept": concept,
        "tutorial_html": html,
        "attempts": attempts.items if attempts else [],
        "quiz_missing": [],
    }


def results_by_question(attempt: QuizAttemptOut) -> dict[str, Any]:
    return {result.question_id: result for result in attempt.results}


def create_app(
    settings: WebSettings | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    web = Web(settings or WebSettings(), transport)

    def guarded(
        handler: Callable[[Request], Awaitable[Response]], *, signed_in: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if signed_in and session.session_token(request) is None:
                return RedirectResponse(f"/sign-in?next={request.url.path}", status_code=303)
            try:
                return await handler(request)
            except ApiError as exc:
                return web.api_failed(request, exc)
            except httpx.TransportError:
                return web.unreachable(request)

        return endpoint

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await web.api.aclose()

    routes = [
        Route("/", guarded(web.home, signed_in=False)),
        Route("/healthz", web.healthz),
        Route("/readyz", web.readyz),
        Route("/sign-up", guarded(web.sign_up, signed_in=False), methods=["GET", "POST"]),
        Route("/sign-in", guarded(web.sign_in, signed_in=False), methods=["GET", "POST"]),
        Route("/sign-out", guarded(web.sign_out, signed_in=False), methods=["POST"]),
        Route("/roadmaps", guarded(web.roadmaps)),
        Route("/roadmaps/new", guarded(web.new_roadmap), methods=["GET", "POST"]),
        Route("/roadmaps/{roadmap_id}", guarded(web.roadmap)),
        Route("/roadmaps/{roadmap_id}/review", guarded(web.review), methods=["POST"]),
        Route("/roadmaps/{roadmap_id}/events", guarded(web.events)),
        Route("/roadmaps/{roadmap_id}/log", guarded(web.log)),
        Route("/roadmaps/{roadmap_id}/chat/events", guarded(web.chat_events)),
        Route("/roadmaps/{roadmap_id}/concepts/{concept_id}", guarded(web.concept)),
        Route(
            "/roadmaps/{roadmap_id}/concepts/{concept_id}/quiz",
            guarded(web.quiz),
            methods=["POST"],
        ),
        Route(
            "/roadmaps/{roadmap_id}/concepts/{concept_id}/chat",
            guarded(web.chat),
            methods=["POST"],
        ),
        Route(
            "/roadmaps/{roadmap_id}/concepts/{concept_id}/progress",
            guarded(web.progress),
            methods=["POST"],
        ),
        Route(
            "/roadmaps/{roadmap_id}/concepts/{concept_id}/regenerate",
            guarded(web.regenerate),
            methods=["POST"],
        ),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    async def missing(request: Request, exc: Exception) -> Response:
        return web.not_found(request)

    async def failed(request: Request, exc: Exception) -> Response:
        # uvicorn logs the traceback; the learner gets a page, not a bare 500.
        return web.page(request, "error.html", 500, message="Something broke on our side.")

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: missing, Exception: failed},
        middleware=[Middleware(SecurityHeaders)],
    )


def __getattr__(name: str) -> Any:
    # `roadmap_web.app:app` for uvicorn, built on first access so importing this module
    # (tests, the benchmark) reads no settings.
    if name == "app":
        return create_app()
    raise AttributeError(name)
