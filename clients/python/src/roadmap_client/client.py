"""``RoadmapClient`` (blocking) and ``AsyncRoadmapClient`` (asyncio): one method per
operation of the API, typed with the models generated from its OpenAPI document.

Both clients run the same request descriptions (``_Calls``); errors raise the
``roadmap_client.errors`` exception for their status, carrying the problem body. The event
stream is followed with ``Last-Event-ID`` resume: a dropped connection is reconnected, a
``204`` (the stream already ended) or a terminal event ends it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Annotated, Any, Generic, Literal, Self, TypeVar, get_args

import httpx
from httpx_sse import ServerSentEvent, SSEError, aconnect_sse, connect_sse
from pydantic import BeforeValidator, TypeAdapter

from roadmap_client.errors import StreamLost, error_for
from roadmap_client.events import CHAT_EVENT_MODELS, EVENT_MODELS, Event, parse_event
from roadmap_client.models import (
    AdminRoadmapPage,
    ApiKeyCreated,
    ApiKeyList,
    ChatAccepted,
    ChatMessageEvent,
    ChatMessageView,
    ChatPage,
    ConceptOut,
    JobAccepted,
    LogOut,
    LogPage,
    ProgressOut,
    QueuesOut,
    QuizAttemptOut,
    QuizAttemptPage,
    Readiness,
    RegenerateAccepted,
    RoadmapDetail,
    RoadmapPage,
    TokenOut,
    UserOut,
)

M = TypeVar("M")
Id = uuid.UUID | str
ContentKind = Literal["tutorial", "resources", "quiz"]
LearnerStatus = Literal["not_started", "in_progress", "done"]
# One question's answer: the chosen option's index (a list of them for multiple choice).
QuizAnswer = int | Sequence[int]
TERMINAL_STATUSES = frozenset({"completed", "partial_failure", "failed", "cancelled"})
DEFAULT_RECONNECT_S = 2.0

API = "/api/v1"
# operationId → (method, path): the operations of services/api/openapi.json this client
# calls (a test fails when the two differ).
OPERATIONS: dict[str, tuple[str, str]] = {
    "auth_register": ("POST", f"{API}/auth/register"),
    "auth_token_create": ("POST", f"{API}/auth/token"),
    "me_get": ("GET", f"{API}/me"),
    "password_change": ("POST", f"{API}/me/password"),
    "api_keys_list": ("GET", f"{API}/me/api-keys"),
    "api_keys_create": ("POST", f"{API}/me/api-keys"),
    "api_keys_revoke": ("DELETE", f"{API}/me/api-keys/{{key_id}}"),
    "roadmaps_create": ("POST", f"{API}/roadmaps"),
    "roadmaps_list": ("GET", f"{API}/roadmaps"),
    "roadmaps_get": ("GET", f"{API}/roadmaps/{{roadmap_id}}"),
    "roadmaps_delete": ("DELETE", f"{API}/roadmaps/{{roadmap_id}}"),
    "roadmap_events_follow": ("GET", f"{API}/roadmaps/{{roadmap_id}}/events"),
    "roadmaps_review": ("POST", f"{API}/roadmaps/{{roadmap_id}}/review"),
    "roadmaps_cancel": ("POST", f"{API}/roadmaps/{{roadmap_id}}/cancel"),
    "roadmaps_retry": ("POST", f"{API}/roadmaps/{{roadmap_id}}/retry"),
    "concepts_get": ("GET", f"{API}/roadmaps/{{roadmap_id}}/concepts/{{concept_id}}"),
    "concepts_regenerate": (
        "POST",
        f"{API}/roadmaps/{{roadmap_id}}/concepts/{{concept_id}}/regenerate",
    ),
    "concept_progress_set": (
        "PUT",
        f"{API}/roadmaps/{{roadmap_id}}/concepts/{{concept_id}}/progress",
    ),
    "quiz_attempts_create": (
        "POST",
        f"{API}/roadmaps/{{roadmap_id}}/concepts/{{concept_id}}/quiz/attempts",
    ),
    "quiz_attempts_list": (
        "GET",
        f"{API}/roadmaps/{{roadmap_id}}/concepts/{{concept_id}}/quiz/attempts",
    ),
    "chat_messages_create": ("POST", f"{API}/roadmaps/{{roadmap_id}}/chat/messages"),
    "chat_messages_list": ("GET", f"{API}/roadmaps/{{roadmap_id}}/chat/messages"),
    "chat_events_follow": ("GET", f"{API}/roadmaps/{{roadmap_id}}/chat/events"),
    "roadmap_logs_list": ("GET", f"{API}/roadmaps/{{roadmap_id}}/logs"),
    "admin_queues_get": ("GET", f"{API}/admin/queues"),
    "admin_roadmaps_list": ("GET", f"{API}/admin/roadmaps"),
    "health_live": ("GET", "/healthz"),
    "health_ready": ("GET", "/readyz"),
    "metrics_scrape": ("GET", "/metrics"),
}


@dataclass(frozen=True)
class _Call(Generic[M]):
    """One request: what to send, which statuses mean success, what the body parses into."""

    operation: str
    path: str
    model: TypeAdapter[M] | None
    json: Any = None
    data: Mapping[str, str] | None = None
    params: Mapping[str, Any] | None = None
    ok: frozenset[int] = field(default=frozenset({200}))

    @property
    def method(self) -> str:
        return OPERATIONS[self.operation][0]


def _call(
    operation: str,
    model: TypeAdapter[M] | None,
    *,
    ok: int = 200,
    json: Any = None,
    data: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    **ids: Id,
) -> _Call[M]:
    path = OPERATIONS[operation][1].format(**{k: str(v) for k, v in ids.items()})
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    return _Call(operation, path, model, json, data, clean or None, frozenset({ok}))


def _body(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


_LOG_KINDS = frozenset(
    get_args(m.model_fields["kind"].annotation)[0]
    for m in get_args(LogOut.model_fields["details"].annotation)
)


def _unknown_log_kinds_untyped(page: Any) -> Any:
    """Details of a kind added to the API after this client was generated read as
    ``untyped`` (docs/api.md: new kinds come in minor versions)."""
    for item in page.get("items", []) if isinstance(page, dict) else []:
        details = item.get("details") if isinstance(item, dict) else None
        if isinstance(details, dict) and details.get("kind") not in _LOG_KINDS:
            item["details"] = {"kind": "untyped", "data": details}
    return page


_LOG_PAGE: TypeAdapter[LogPage] = TypeAdapter(
    Annotated[LogPage, BeforeValidator(_unknown_log_kinds_untyped)]
)
_USER = TypeAdapter(UserOut)
_ACCEPTED = TypeAdapter(JobAccepted)
_ROADMAP = TypeAdapter(RoadmapDetail)
_ANY: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])
_TEXT: TypeAdapter[str] = TypeAdapter(str)


class _Calls:
    """The API's operations as request descriptions."""

    @staticmethod
    def register(email: str, password: str, display_name: str | None) -> _Call[UserOut]:
        body = _body(email=email, password=password, display_name=display_name)
        return _call("auth_register", _USER, ok=201, json=body)

    @staticmethod
    def password_change(current: str, new: str) -> _Call[TokenOut]:
        body = {"current_password": current, "new_password": new}
        return _call("password_change", TypeAdapter(TokenOut), json=body)

    @staticmethod
    def token(email: str, password: str) -> _Call[TokenOut]:
        form = {"username": email, "password": password}
        return _call("auth_token_create", TypeAdapter(TokenOut), data=form)

    @staticmethod
    def roadmap_page(
        status: str | None, limit: int | None, cursor: str | None
    ) -> _Call[RoadmapPage]:
        params = {"status": status, "limit": limit, "cursor": cursor}
        return _call("roadmaps_list", TypeAdapter(RoadmapPage), params=params)

    @staticmethod
    def concept(job_id: Id, concept_id: Id, version: int | None) -> _Call[ConceptOut]:
        return _call(
            "concepts_get", TypeAdapter(ConceptOut), params={"version": version},
            roadmap_id=job_id, concept_id=concept_id,
        )  # fmt: skip

    @staticmethod
    def logs(job_id: Id, level: str | None, after: str | None, limit: int | None) -> _Call[LogPage]:
        params = {"level": level, "after": after, "limit": limit}
        return _call("roadmap_logs_list", _LOG_PAGE, params=params, roadmap_id=job_id)

    @staticmethod
    def regenerate(
        job_id: Id, concept_id: Id, kinds: list[ContentKind], instructions: str | None
    ) -> _Call[RegenerateAccepted]:
        return _call(
            "concepts_regenerate", TypeAdapter(RegenerateAccepted), ok=202,
            json=_body(kinds=kinds, instructions=instructions),
            roadmap_id=job_id, concept_id=concept_id,
        )  # fmt: skip

    @staticmethod
    def progress(job_id: Id, concept_id: Id, status: LearnerStatus) -> _Call[ProgressOut]:
        return _call(
            "concept_progress_set", TypeAdapter(ProgressOut), json={"status": status},
            roadmap_id=job_id, concept_id=concept_id,
        )  # fmt: skip

    @staticmethod
    def quiz_attempt(
        job_id: Id, concept_id: Id, answers: Sequence[QuizAnswer], quiz_version: int | None
    ) -> _Call[QuizAttemptOut]:
        body = _body(
            answers=[a if isinstance(a, int) else list(a) for a in answers],
            quiz_version=quiz_version,
        )
        return _call(
            "quiz_attempts_create", TypeAdapter(QuizAttemptOut), ok=201, json=body,
            roadmap_id=job_id, concept_id=concept_id,
        )  # fmt: skip

    @staticmethod
    def quiz_attempts(
        job_id: Id, concept_id: Id, limit: int | None, cursor: str | None
    ) -> _Call[QuizAttemptPage]:
        return _call(
            "quiz_attempts_list", TypeAdapter(QuizAttemptPage),
            params={"limit": limit, "cursor": cursor}, roadmap_id=job_id, concept_id=concept_id,
        )  # fmt: skip

    @staticmethod
    def chat_message(job_id: Id, content: str, concept_id: Id | None) -> _Call[ChatAccepted]:
        body = _body(content=content, concept_id=str(concept_id) if concept_id else None)
        return _call(
            "chat_messages_create", TypeAdapter(ChatAccepted), ok=202, json=body,
            roadmap_id=job_id,
        )  # fmt: skip

    @staticmethod
    def chat_messages(job_id: Id, limit: int | None) -> _Call[ChatPage]:
        return _call(
            "chat_messages_list", TypeAdapter(ChatPage), params={"limit": limit},
            roadmap_id=job_id,
        )  # fmt: skip


def _answer_of(event: Event, answer_id: uuid.UUID) -> ChatMessageView | None:
    """The finished answer if ``event`` is its ``message`` event."""
    if isinstance(event.data, ChatMessageEvent) and event.data.message.id == answer_id:
        return event.data.message
    return None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _parse(call: _Call[M], response: httpx.Response) -> M:
    if response.status_code not in call.ok:
        try:
            problem = response.json()
        except ValueError:
            problem = {"title": response.reason_phrase}
        if not isinstance(problem, dict):
            problem = {"detail": problem}
        raise error_for(
            response.status_code, problem, call.method, call.path, _retry_after(response)
        )
    if call.model is None:
        return None  # type: ignore[return-value]
    if call.model is _TEXT:
        return response.text  # type: ignore[return-value]
    return call.model.validate_json(response.content)


class _Follow:
    """State of one followed stream across reconnects."""

    def __init__(
        self,
        job_id: Id,
        last_event_id: str | None,
        reconnects: int,
        operation: str = "roadmap_events_follow",
    ) -> None:
        self.operation = operation
        self.models = CHAT_EVENT_MODELS if operation == "chat_events_follow" else EVENT_MODELS
        self.path = OPERATIONS[operation][1].format(roadmap_id=job_id)
        self.last_id = last_event_id
        self.reconnects = reconnects
        self.failures = 0
        self.wait_s = DEFAULT_RECONNECT_S
        self.done = False

    def finished(self) -> bool:
        return self.done

    def headers(self, base: dict[str, str]) -> dict[str, str]:
        if self.last_id:
            base["Last-Event-ID"] = self.last_id
        return base

    def opened(self, response: httpx.Response) -> bool:
        """Whether to read events (``False``: the stream already ended with 204)."""
        if response.status_code == 204:
            self.done = True
            return False
        return True

    def seen(self, sse: ServerSentEvent) -> Event | None:
        if sse.retry is not None:
            self.wait_s = sse.retry / 1000
        event = parse_event(sse.event, sse.data, sse.id, self.models)
        if event is None:
            return None
        self.failures = 0
        self.last_id = event.id or self.last_id
        if event.is_terminal:
            self.done = True
        return event

    def lost(self) -> float:
        """A dropped connection: seconds to wait before the next attempt (or raise)."""
        self.failures += 1
        if self.failures > self.reconnects:
            raise StreamLost(
                0, {"title": "event stream lost", "detail": self.path}, "GET", self.path
            )
        return min(self.wait_s * self.failures, 10.0)


class _Base:
    def __init__(self, token: str | None, headers: Mapping[str, str] | None) -> None:
        self.token = token
        self._extra = dict(headers or {})

    def _headers(self) -> dict[str, str]:
        headers = dict(self._extra)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


class RoadmapClient(_Base):
    """Blocking client: ``with RoadmapClient(url) as api: api.login(email, pw); ...``."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(token, headers)
        self.http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _run(self, call: _Call[M]) -> M:
        response = self.http.request(
            call.method, call.path, json=call.json, data=call.data, params=call.params,
            headers=self._headers(),
        )  # fmt: skip
        return _parse(call, response)

    # -- auth ---------------------------------------------------------------------------

    def register(self, email: str, password: str, display_name: str | None = None) -> UserOut:
        return self._run(_Calls.register(email, password, display_name))

    def login(self, email: str, password: str) -> TokenOut:
        """Get an access token and use it for the following calls."""
        token = self._run(_Calls.token(email, password))
        self.token = token.access_token
        return token

    def me(self) -> UserOut:
        return self._run(_call("me_get", _USER))

    def change_password(self, current: str, new: str) -> TokenOut:
        """Change the password (needs a password login, not an API key). Every earlier token
        and API key stops working; the new access token is used from now on."""
        token = self._run(_Calls.password_change(current, new))
        self.token = token.access_token
        return token

    def create_api_key(self, name: str) -> ApiKeyCreated:
        return self._run(
            _call("api_keys_create", TypeAdapter(ApiKeyCreated), ok=201, json={"name": name})
        )

    def list_api_keys(self) -> ApiKeyList:
        return self._run(_call("api_keys_list", TypeAdapter(ApiKeyList)))

    def delete_api_key(self, key_id: Id) -> None:
        self._run(_call("api_keys_revoke", None, ok=204, key_id=key_id))

    # -- roadmaps -----------------------------------------------------------------------

    def create_roadmap(self, **request: Any) -> JobAccepted:
        """``goal``, ``level``, ``weekly_hours``, ``weeks`` and the optional fields of
        ``RoadmapRequest`` (``language``, ``learning_style``, ``background``, ``review``)."""
        return self._run(_call("roadmaps_create", _ACCEPTED, ok=202, json=request))

    def list_roadmaps(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> RoadmapPage:
        return self._run(_Calls.roadmap_page(status, limit, cursor))

    def get_roadmap(self, job_id: Id) -> RoadmapDetail:
        return self._run(_call("roadmaps_get", _ROADMAP, roadmap_id=job_id))

    def get_roadmap_json(self, job_id: Id) -> dict[str, Any]:
        """The roadmap exactly as the server sent it (every field)."""
        return self._run(_call("roadmaps_get", _ANY, roadmap_id=job_id))

    def review(self, job_id: Id, *, approve: bool, feedback: str | None = None) -> JobAccepted:
        body = _body(approve=approve, feedback=feedback)
        return self._run(_call("roadmaps_review", _ACCEPTED, ok=202, json=body, roadmap_id=job_id))

    def cancel(self, job_id: Id) -> JobAccepted:
        return self._run(_call("roadmaps_cancel", _ACCEPTED, ok=202, roadmap_id=job_id))

    def retry(self, job_id: Id) -> JobAccepted:
        return self._run(_call("roadmaps_retry", _ACCEPTED, ok=202, roadmap_id=job_id))

    def delete_roadmap(self, job_id: Id) -> None:
        self._run(_call("roadmaps_delete", None, ok=204, roadmap_id=job_id))

    def events(
        self,
        job_id: Id,
        *,
        last_event_id: str | None = None,
        reconnects: int = 5,
        read_timeout: float = 60.0,
        operation: str = "roadmap_events_follow",
    ) -> Generator[Event, None, None]:
        """Follow the roadmap's progress until its terminal event, resuming after drops."""
        follow = _Follow(job_id, last_event_id, reconnects, operation)
        while not follow.finished():
            try:
                with connect_sse(
                    self.http, "GET", follow.path, headers=follow.headers(self._headers()),
                    timeout=httpx.Timeout(10.0, read=read_timeout),
                ) as source:  # fmt: skip
                    response = source.response
                    if response.status_code not in (200, 204):
                        response.read()
                        _parse(_call(follow.operation, None, roadmap_id=job_id), response)
                    if not follow.opened(response):
                        return
                    for sse in source.iter_sse():
                        event = follow.seen(sse)
                        if event is not None:
                            yield event
                        if follow.finished():
                            return
            except (httpx.TransportError, SSEError):
                pass
            time.sleep(follow.lost())

    def wait(self, job_id: Id, *, max_wait: float = 300.0) -> RoadmapDetail:
        """Poll until the roadmap reaches a terminal status (or ``max_wait`` seconds)."""
        deadline = time.monotonic() + max_wait
        while True:
            roadmap = self.get_roadmap(job_id)
            if roadmap.status in TERMINAL_STATUSES or time.monotonic() > deadline:
                return roadmap
            time.sleep(0.5)

    # -- content ------------------------------------------------------------------------

    def get_concept(self, job_id: Id, concept_id: Id, *, version: int | None = None) -> ConceptOut:
        return self._run(_Calls.concept(job_id, concept_id, version))

    def regenerate(
        self,
        job_id: Id,
        concept_id: Id,
        kinds: list[ContentKind],
        instructions: str | None = None,
    ) -> RegenerateAccepted:
        return self._run(_Calls.regenerate(job_id, concept_id, kinds, instructions))

    def set_progress(self, job_id: Id, concept_id: Id, status: LearnerStatus) -> ProgressOut:
        """Mark where you are with a concept: ``not_started``, ``in_progress`` or ``done``."""
        return self._run(_Calls.progress(job_id, concept_id, status))

    def quiz_attempt(
        self,
        job_id: Id,
        concept_id: Id,
        answers: Sequence[QuizAnswer],
        *,
        quiz_version: int | None = None,
    ) -> QuizAttemptOut:
        """Answer the concept's quiz: one entry per question, in order (an option index, or
        a list of them for a ``multiple_choice`` question). ``quiz_version``: the version you
        answered (409 when it is no longer the latest)."""
        return self._run(_Calls.quiz_attempt(job_id, concept_id, answers, quiz_version))

    def quiz_attempts(
        self, job_id: Id, concept_id: Id, *, limit: int | None = None, cursor: str | None = None
    ) -> QuizAttemptPage:
        """Your attempts at the concept's quiz, newest first."""
        return self._run(_Calls.quiz_attempts(job_id, concept_id, limit, cursor))

    # -- mentor chat --------------------------------------------------------------------

    def post_chat_message(
        self, job_id: Id, content: str, *, concept_id: Id | None = None
    ) -> ChatAccepted:
        """Ask the roadmap's mentor; the answer streams on :meth:`chat_events`."""
        return self._run(_Calls.chat_message(job_id, content, concept_id))

    def chat_messages(self, job_id: Id, *, limit: int | None = None) -> ChatPage:
        """The conversation, oldest first."""
        return self._run(_Calls.chat_messages(job_id, limit))

    def chat_events(
        self, job_id: Id, *, last_event_id: str | None = None, read_timeout: float = 60.0
    ) -> Generator[Event, None, None]:
        """The chat's ``delta`` and ``message`` events (the stream never ends by itself:
        stop iterating when you have what you wanted)."""
        return self.events(
            job_id,
            last_event_id=last_event_id,
            read_timeout=read_timeout,
            operation="chat_events_follow",
        )

    def ask(
        self,
        job_id: Id,
        content: str,
        *,
        concept_id: Id | None = None,
        max_wait: float = 60.0,
    ) -> tuple[ChatAccepted, ChatMessageView]:
        """Ask, then follow the stream until the answer's ``message`` event (``StreamLost``
        when no answer came within about ``max_wait`` seconds)."""
        accepted = self.post_chat_message(job_id, content, concept_id=concept_id)
        deadline = time.monotonic() + max_wait
        stream = self.events(
            job_id,
            last_event_id=accepted.last_event_id,
            reconnects=1,
            read_timeout=max_wait,
            operation="chat_events_follow",
        )
        try:
            for event in stream:
                answer = _answer_of(event, accepted.answer_id)
                if answer is not None:
                    return accepted, answer
                if time.monotonic() > deadline:
                    break
        finally:
            stream.close()
        path = OPERATIONS["chat_events_follow"][1].format(roadmap_id=job_id)
        raise StreamLost(0, {"title": "no answer in time", "detail": path}, "GET", path)

    # -- logs, admin, health ------------------------------------------------------------

    def logs(
        self,
        job_id: Id,
        *,
        level: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> LogPage:
        return self._run(_Calls.logs(job_id, level, after, limit))

    def count_logs(self, job_id: Id, *, max_pages: int = 100) -> int:
        total, cursor = 0, None
        for _ in range(max_pages):
            page = self.logs(job_id, after=cursor, limit=200)
            total += len(page.items)
            cursor = page.next_cursor
            if not cursor:
                break
        return total

    def admin_queues(self) -> QueuesOut:
        return self._run(_call("admin_queues_get", TypeAdapter(QueuesOut)))

    def admin_roadmaps(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> AdminRoadmapPage:
        params = {"status": status, "limit": limit, "cursor": cursor}
        return self._run(_call("admin_roadmaps_list", TypeAdapter(AdminRoadmapPage), params=params))

    def healthy(self) -> bool:
        return self.http.get(OPERATIONS["health_live"][1]).status_code == 200

    def readiness(self) -> Readiness:
        response = self.http.get(OPERATIONS["health_ready"][1], headers=self._headers())
        return Readiness.model_validate_json(response.content)

    def metrics(self, scrape_token: str) -> str:
        """Prometheus metrics (needs the server's ``METRICS_TOKEN``, not a user's token)."""
        call = _call("metrics_scrape", _TEXT)
        headers = {**self._headers(), "Authorization": f"Bearer {scrape_token}"}
        return _parse(call, self.http.get(call.path, headers=headers))


class AsyncRoadmapClient(_Base):
    """The same operations for asyncio code (``async with AsyncRoadmapClient(url) as api``)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(token, headers)
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _run(self, call: _Call[M]) -> M:
        response = await self.http.request(
            call.method, call.path, json=call.json, data=call.data, params=call.params,
            headers=self._headers(),
        )  # fmt: skip
        return _parse(call, response)

    async def register(self, email: str, password: str, display_name: str | None = None) -> UserOut:
        return await self._run(_Calls.register(email, password, display_name))

    async def login(self, email: str, password: str) -> TokenOut:
        token = await self._run(_Calls.token(email, password))
        self.token = token.access_token
        return token

    async def me(self) -> UserOut:
        return await self._run(_call("me_get", _USER))

    async def change_password(self, current: str, new: str) -> TokenOut:
        token = await self._run(_Calls.password_change(current, new))
        self.token = token.access_token
        return token

    async def create_api_key(self, name: str) -> ApiKeyCreated:
        return await self._run(
            _call("api_keys_create", TypeAdapter(ApiKeyCreated), ok=201, json={"name": name})
        )

    async def list_api_keys(self) -> ApiKeyList:
        return await self._run(_call("api_keys_list", TypeAdapter(ApiKeyList)))

    async def delete_api_key(self, key_id: Id) -> None:
        await self._run(_call("api_keys_revoke", None, ok=204, key_id=key_id))

    async def create_roadmap(self, **request: Any) -> JobAccepted:
        return await self._run(_call("roadmaps_create", _ACCEPTED, ok=202, json=request))

    async def list_roadmaps(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> RoadmapPage:
        return await self._run(_Calls.roadmap_page(status, limit, cursor))

    async def get_roadmap(self, job_id: Id) -> RoadmapDetail:
        return await self._run(_call("roadmaps_get", _ROADMAP, roadmap_id=job_id))

    async def get_roadmap_json(self, job_id: Id) -> dict[str, Any]:
        return await self._run(_call("roadmaps_get", _ANY, roadmap_id=job_id))

    async def review(
        self, job_id: Id, *, approve: bool, feedback: str | None = None
    ) -> JobAccepted:
        body = _body(approve=approve, feedback=feedback)
        return await self._run(
            _call("roadmaps_review", _ACCEPTED, ok=202, json=body, roadmap_id=job_id)
        )

    async def cancel(self, job_id: Id) -> JobAccepted:
        return await self._run(_call("roadmaps_cancel", _ACCEPTED, ok=202, roadmap_id=job_id))

    async def retry(self, job_id: Id) -> JobAccepted:
        return await self._run(_call("roadmaps_retry", _ACCEPTED, ok=202, roadmap_id=job_id))

    async def delete_roadmap(self, job_id: Id) -> None:
        await self._run(_call("roadmaps_delete", None, ok=204, roadmap_id=job_id))

    async def events(
        self,
        job_id: Id,
        *,
        last_event_id: str | None = None,
        reconnects: int = 5,
        read_timeout: float = 60.0,
        operation: str = "roadmap_events_follow",
    ) -> AsyncGenerator[Event, None]:
        """Follow the roadmap's progress until its terminal event, resuming after drops."""
        follow = _Follow(job_id, last_event_id, reconnects, operation)
        while not follow.finished():
            try:
                async with aconnect_sse(
                    self.http, "GET", follow.path, headers=follow.headers(self._headers()),
                    timeout=httpx.Timeout(10.0, read=read_timeout),
                ) as source:  # fmt: skip
                    response = source.response
                    if response.status_code not in (200, 204):
                        await response.aread()
                        _parse(_call(follow.operation, None, roadmap_id=job_id), response)
                    if not follow.opened(response):
                        return
                    async for sse in source.aiter_sse():
                        event = follow.seen(sse)
                        if event is not None:
                            yield event
                        if follow.finished():
                            return
            except (httpx.TransportError, SSEError):
                pass
            await asyncio.sleep(follow.lost())

    async def wait(self, job_id: Id, *, max_wait: float = 300.0) -> RoadmapDetail:
        deadline = time.monotonic() + max_wait
        while True:
            roadmap = await self.get_roadmap(job_id)
            if roadmap.status in TERMINAL_STATUSES or time.monotonic() > deadline:
                return roadmap
            await asyncio.sleep(0.5)

    async def get_concept(
        self, job_id: Id, concept_id: Id, *, version: int | None = None
    ) -> ConceptOut:
        return await self._run(_Calls.concept(job_id, concept_id, version))

    async def regenerate(
        self,
        job_id: Id,
        concept_id: Id,
        kinds: list[ContentKind],
        instructions: str | None = None,
    ) -> RegenerateAccepted:
        return await self._run(_Calls.regenerate(job_id, concept_id, kinds, instructions))

    async def set_progress(self, job_id: Id, concept_id: Id, status: LearnerStatus) -> ProgressOut:
        return await self._run(_Calls.progress(job_id, concept_id, status))

    async def quiz_attempt(
        self,
        job_id: Id,
        concept_id: Id,
        answers: Sequence[QuizAnswer],
        *,
        quiz_version: int | None = None,
    ) -> QuizAttemptOut:
        return await self._run(_Calls.quiz_attempt(job_id, concept_id, answers, quiz_version))

    async def quiz_attempts(
        self, job_id: Id, concept_id: Id, *, limit: int | None = None, cursor: str | None = None
    ) -> QuizAttemptPage:
        return await self._run(_Calls.quiz_attempts(job_id, concept_id, limit, cursor))

    async def post_chat_message(
        self, job_id: Id, content: str, *, concept_id: Id | None = None
    ) -> ChatAccepted:
        """Ask the roadmap's mentor; the answer streams on :meth:`chat_events`."""
        return await self._run(_Calls.chat_message(job_id, content, concept_id))

    async def chat_messages(self, job_id: Id, *, limit: int | None = None) -> ChatPage:
        """The conversation, oldest first."""
        return await self._run(_Calls.chat_messages(job_id, limit))

    def chat_events(
        self, job_id: Id, *, last_event_id: str | None = None, read_timeout: float = 60.0
    ) -> AsyncGenerator[Event, None]:
        """The chat's ``delta`` and ``message`` events (the stream never ends by itself)."""
        return self.events(
            job_id,
            last_event_id=last_event_id,
            read_timeout=read_timeout,
            operation="chat_events_follow",
        )

    async def logs(
        self,
        job_id: Id,
        *,
        level: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> LogPage:
        return await self._run(_Calls.logs(job_id, level, after, limit))

    async def count_logs(self, job_id: Id, *, max_pages: int = 100) -> int:
        total, cursor = 0, None
        for _ in range(max_pages):
            page = await self.logs(job_id, after=cursor, limit=200)
            total += len(page.items)
            cursor = page.next_cursor
            if not cursor:
                break
        return total

    async def admin_queues(self) -> QueuesOut:
        return await self._run(_call("admin_queues_get", TypeAdapter(QueuesOut)))

    async def admin_roadmaps(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> AdminRoadmapPage:
        params = {"status": status, "limit": limit, "cursor": cursor}
        return await self._run(
            _call("admin_roadmaps_list", TypeAdapter(AdminRoadmapPage), params=params)
        )

    async def healthy(self) -> bool:
        return (await self.http.get(OPERATIONS["health_live"][1])).status_code == 200

    async def readiness(self) -> Readiness:
        response = await self.http.get(OPERATIONS["health_ready"][1], headers=self._headers())
        return Readiness.model_validate_json(response.content)

    async def metrics(self, scrape_token: str) -> str:
        call = _call("metrics_scrape", _TEXT)
        headers = {**self._headers(), "Authorization": f"Bearer {scrape_token}"}
        return _parse(call, await self.http.get(call.path, headers=headers))
