"""A small typed client for the Roadmap Agent API (`/api/v1`), sync and async.

Both clients share the request descriptions below; each method is one line that runs
one of them. Response models allow extra fields, so a newer server does not break an
older client. Errors come back as :class:`ApiError` carrying the RFC 9457 problem body.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar

import httpx
from httpx_sse import SSEError, aconnect_sse, connect_sse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

API = "/api/v1"
TERMINAL_STATUSES = frozenset({"completed", "partial_failure", "failed", "cancelled"})
TERMINAL_EVENTS = frozenset({"completed", "failed", "cancelled"})
ContentKind = Literal["tutorial", "resources", "quiz"]

M = TypeVar("M")


class ApiError(Exception):
    """A failed call. `problem` is the RFC 9457 body (or one built from the reason phrase);
    `status` is 0 when no HTTP answer applies (the event stream was lost, a wait timed out)."""

    def __init__(self, status: int, problem: Mapping[str, Any], method: str, path: str) -> None:
        self.status = status
        self.problem = dict(problem)
        self.method = method
        self.path = path
        title = str(problem.get("title") or "")
        detail = str(problem.get("detail") or "")
        text = ": ".join(part for part in (title, detail) if part) or "no details"
        super().__init__(f"{method} {path} → {status}: {text}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class User(_Model):
    id: uuid.UUID
    email: str
    display_name: str | None = None
    is_admin: bool = False


class Token(_Model):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int | None = None


class ApiKey(_Model):
    id: uuid.UUID
    name: str
    prefix: str | None = None
    key: str | None = Field(default=None, description="the full key, only when just created")
    revoked_at: str | None = None


class ApiKeyList(_Model):
    items: list[ApiKey]


class Links(_Model):
    self_: str | None = Field(default=None, alias="self")
    events: str | None = None
    logs: str | None = None


class JobAccepted(_Model):
    id: uuid.UUID
    status: str
    links: Links = Links()


class Progress(_Model):
    total: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0
    cancelled: int = 0


class Usage(_Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal("0")
    llm_calls: int = 0


class ItemState(_Model):
    status: str
    version: int = 0
    error: str | None = None


class ConceptSummary(_Model):
    id: uuid.UUID
    key: str | None = None
    title: str
    summary: str | None = None
    estimated_hours: float | None = None
    completed: bool = False
    content: dict[str, ItemState] = {}


class ModuleView(_Model):
    title: str
    description: str | None = None
    concepts: list[ConceptSummary] = []


class StageView(_Model):
    title: str
    description: str | None = None
    modules: list[ModuleView] = []


class FrameworkView(_Model):
    title: str | None = None
    summary: str | None = None
    stages: list[StageView] = []

    def concepts(self) -> list[ConceptSummary]:
        return [c for s in self.stages for m in s.modules for c in m.concepts]


class RoadmapSummary(_Model):
    id: uuid.UUID
    status: str
    current_step: str | None = None
    title: str | None = None
    goal: str | None = None
    progress: Progress = Progress()

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class Roadmap(RoadmapSummary):
    summary: str | None = None
    error: str | None = None
    request: dict[str, Any] = {}
    usage: Usage = Usage()
    framework: FrameworkView | None = None


class RoadmapPage(_Model):
    items: list[RoadmapSummary]
    next_cursor: str | None = None


class ContentVersion(_Model):
    version: int
    body: dict[str, Any] = Field(description="a Tutorial, a ResourceList or a Quiz")
    model: str | None = None
    instructions: str | None = None


class ContentItem(_Model):
    kind: str
    status: str
    version: int = 0
    versions: list[int] = []
    error: str | None = None
    result: ContentVersion | None = None


class ConceptDetail(_Model):
    id: uuid.UUID
    roadmap_id: uuid.UUID | None = None
    key: str | None = None
    title: str
    summary: str | None = None
    completed: bool = False
    content: dict[str, ContentItem] = {}

    def body(self, kind: ContentKind) -> dict[str, Any] | None:
        """The generated content of `kind` (latest, or the version asked for), if any."""
        item = self.content.get(kind)
        return item.result.body if item is not None and item.result is not None else None


class RegenerateAccepted(_Model):
    id: uuid.UUID
    concept_id: uuid.UUID
    kinds: list[str]
    status: str


class ConceptProgress(_Model):
    concept_id: uuid.UUID
    completed: bool


class QuestionResult(_Model):
    question_id: str
    correct: bool
    expected: list[int] = []
    explanation: str | None = None


class QuizResult(_Model):
    id: uuid.UUID | None = None
    quiz_version: int | None = None
    score: float
    correct: int
    total: int
    results: list[QuestionResult] = []


class LogEntry(_Model):
    event_id: uuid.UUID | None = None
    ts: datetime | None = None
    level: str
    category: str | None = None
    step: str | None = None
    message: str
    concept_id: uuid.UUID | None = None
    duration_ms: float | None = None
    details: dict[str, Any] = {}


class LogPage(_Model):
    items: list[LogEntry]
    next_cursor: str | None = None


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event of a job's progress stream."""

    type: str
    data: dict[str, Any]
    id: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.type in TERMINAL_EVENTS


@dataclass(frozen=True)
class _Call(Generic[M]):
    """One request: what to send, which statuses mean success, what the body parses into."""

    method: str
    path: str
    model: TypeAdapter[M] | None
    json: Any = None
    data: Mapping[str, str] | None = None
    params: Mapping[str, Any] | None = None
    ok: frozenset[int] = field(default=frozenset({200}))


def _adapter(tp: type[M]) -> TypeAdapter[M]:
    return TypeAdapter(tp)


_USER = _adapter(User)
_TOKEN = _adapter(Token)
_APIKEY = _adapter(ApiKey)
_ACCEPTED = _adapter(JobAccepted)
_ROADMAP = _adapter(Roadmap)
_PAGE = _adapter(RoadmapPage)
_CONCEPT = _adapter(ConceptDetail)
_LOGS = _adapter(LogPage)
_QUIZ = _adapter(QuizResult)
_REGEN = _adapter(RegenerateAccepted)
_PROGRESS = _adapter(ConceptProgress)
_ANY = _adapter(dict[str, Any])


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class _Calls:
    """The API contract, as request descriptions."""

    @staticmethod
    def register(email: str, password: str, display_name: str | None) -> _Call[User]:
        body = _clean({"email": email, "password": password, "display_name": display_name})
        return _Call("POST", f"{API}/auth/register", _USER, json=body, ok=frozenset({201}))

    @staticmethod
    def token(email: str, password: str) -> _Call[Token]:
        form = {"username": email, "password": password}
        return _Call("POST", f"{API}/auth/token", _TOKEN, data=form)

    @staticmethod
    def me() -> _Call[User]:
        return _Call("GET", f"{API}/me", _USER)

    @staticmethod
    def create_api_key(name: str) -> _Call[ApiKey]:
        return _Call(
            "POST", f"{API}/me/api-keys", _APIKEY, json={"name": name}, ok=frozenset({201})
        )

    @staticmethod
    def list_api_keys() -> _Call[ApiKeyList]:
        return _Call("GET", f"{API}/me/api-keys", _adapter(ApiKeyList))

    @staticmethod
    def delete_api_key(key_id: uuid.UUID | str) -> _Call[None]:
        return _Call("DELETE", f"{API}/me/api-keys/{key_id}", None, ok=frozenset({204}))

    @staticmethod
    def create_roadmap(request: Mapping[str, Any]) -> _Call[JobAccepted]:
        return _Call("POST", f"{API}/roadmaps", _ACCEPTED, json=dict(request), ok=frozenset({202}))

    @staticmethod
    def list_roadmaps(
        status: str | None, limit: int | None, cursor: str | None
    ) -> _Call[RoadmapPage]:
        params = _clean({"status": status, "limit": limit, "cursor": cursor})
        return _Call("GET", f"{API}/roadmaps", _PAGE, params=params)

    @staticmethod
    def roadmap(job_id: uuid.UUID | str) -> _Call[Roadmap]:
        return _Call("GET", f"{API}/roadmaps/{job_id}", _ROADMAP)

    @staticmethod
    def roadmap_raw(job_id: uuid.UUID | str) -> _Call[dict[str, Any]]:
        return _Call("GET", f"{API}/roadmaps/{job_id}", _ANY)

    @staticmethod
    def concept(
        job_id: uuid.UUID | str, concept_id: uuid.UUID | str, version: int | None
    ) -> _Call[ConceptDetail]:
        path = f"{API}/roadmaps/{job_id}/concepts/{concept_id}"
        return _Call("GET", path, _CONCEPT, params=_clean({"version": version}))

    @staticmethod
    def review(job_id: uuid.UUID | str, approve: bool, feedback: str | None) -> _Call[JobAccepted]:
        body = _clean({"approve": approve, "feedback": feedback})
        path = f"{API}/roadmaps/{job_id}/review"
        return _Call("POST", path, _ACCEPTED, json=body, ok=frozenset({202}))

    @staticmethod
    def action(job_id: uuid.UUID | str, action: Literal["cancel", "retry"]) -> _Call[JobAccepted]:
        return _Call("POST", f"{API}/roadmaps/{job_id}/{action}", _ACCEPTED, ok=frozenset({202}))

    @staticmethod
    def regenerate(
        job_id: uuid.UUID | str,
        concept_id: uuid.UUID | str,
        kinds: list[ContentKind],
        instructions: str | None,
    ) -> _Call[RegenerateAccepted]:
        path = f"{API}/roadmaps/{job_id}/concepts/{concept_id}/regenerate"
        body = _clean({"kinds": kinds, "instructions": instructions})
        return _Call("POST", path, _REGEN, json=body, ok=frozenset({202}))

    @staticmethod
    def delete(job_id: uuid.UUID | str) -> _Call[None]:
        return _Call("DELETE", f"{API}/roadmaps/{job_id}", None, ok=frozenset({204}))

    @staticmethod
    def logs(
        job_id: uuid.UUID | str, level: str | None, after: str | None, limit: int | None
    ) -> _Call[LogPage]:
        params = _clean({"level": level, "after": after, "limit": limit})
        return _Call("GET", f"{API}/roadmaps/{job_id}/logs", _LOGS, params=params)

    @staticmethod
    def progress(
        job_id: uuid.UUID | str, concept_id: uuid.UUID | str, completed: bool
    ) -> _Call[ConceptProgress]:
        path = f"{API}/roadmaps/{job_id}/concepts/{concept_id}/progress"
        return _Call("PUT", path, _PROGRESS, json={"completed": completed})

    @staticmethod
    def quiz_attempt(
        job_id: uuid.UUID | str, concept_id: uuid.UUID | str, answers: Mapping[str, list[int]]
    ) -> _Call[QuizResult]:
        path = f"{API}/roadmaps/{job_id}/concepts/{concept_id}/quiz-attempts"
        return _Call("POST", path, _QUIZ, json={"answers": dict(answers)}, ok=frozenset({201}))


def _parse(call: _Call[M], response: httpx.Response) -> M:
    if response.status_code not in call.ok:
        try:
            problem = response.json()
        except ValueError:
            problem = {"title": response.reason_phrase}
        if not isinstance(problem, dict):
            problem = {"detail": problem}
        raise ApiError(response.status_code, problem, call.method, call.path)
    if call.model is None:
        return None  # type: ignore[return-value]
    return call.model.validate_json(response.content)


def _to_event(sse: Any) -> Event | None:
    if sse.event in ("ping", "heartbeat") or not sse.data:
        return None
    try:
        data = json.loads(sse.data)
    except ValueError:
        data = {"raw": sse.data}
    if not isinstance(data, dict):
        data = {"value": data}
    return Event(type=sse.event, data=data, id=sse.id or None)


class _Base:
    def __init__(self, token: str | None) -> None:
        self.token = token

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


class RoadmapClient(_Base):
    """Blocking client. `with RoadmapClient(url) as c: c.login(email, pw); c.create_roadmap(...)`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(token)
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

    def register(self, email: str, password: str, display_name: str | None = None) -> User:
        return self._run(_Calls.register(email, password, display_name))

    def login(self, email: str, password: str) -> Token:
        """Get a token and use it for the following calls."""
        token = self._run(_Calls.token(email, password))
        self.token = token.access_token
        return token

    def me(self) -> User:
        return self._run(_Calls.me())

    def create_api_key(self, name: str) -> ApiKey:
        return self._run(_Calls.create_api_key(name))

    def list_api_keys(self) -> ApiKeyList:
        return self._run(_Calls.list_api_keys())

    def delete_api_key(self, key_id: uuid.UUID | str) -> None:
        self._run(_Calls.delete_api_key(key_id))

    def create_roadmap(self, **request: Any) -> JobAccepted:
        return self._run(_Calls.create_roadmap(request))

    def list_roadmaps(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> RoadmapPage:
        return self._run(_Calls.list_roadmaps(status, limit, cursor))

    def get_roadmap(self, job_id: uuid.UUID | str) -> Roadmap:
        return self._run(_Calls.roadmap(job_id))

    def get_roadmap_json(self, job_id: uuid.UUID | str) -> dict[str, Any]:
        """The roadmap exactly as the server sent it (every field, for `--json`)."""
        return self._run(_Calls.roadmap_raw(job_id))

    def get_concept(
        self, job_id: uuid.UUID | str, concept_id: uuid.UUID | str, *, version: int | None = None
    ) -> ConceptDetail:
        return self._run(_Calls.concept(job_id, concept_id, version))

    def review(
        self, job_id: uuid.UUID | str, *, approve: bool, feedback: str | None = None
    ) -> JobAccepted:
        return self._run(_Calls.review(job_id, approve, feedback))

    def cancel(self, job_id: uuid.UUID | str) -> JobAccepted:
        return self._run(_Calls.action(job_id, "cancel"))

    def retry(self, job_id: uuid.UUID | str) -> JobAccepted:
        return self._run(_Calls.action(job_id, "retry"))

    def regenerate(
        self,
        job_id: uuid.UUID | str,
        concept_id: uuid.UUID | str,
        kinds: list[ContentKind],
        instructions: str | None = None,
    ) -> RegenerateAccepted:
        return self._run(_Calls.regenerate(job_id, concept_id, kinds, instructions))

    def delete_roadmap(self, job_id: uuid.UUID | str) -> None:
        self._run(_Calls.delete(job_id))

    def logs(
        self,
        job_id: uuid.UUID | str,
        *,
        level: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> LogPage:
        return self._run(_Calls.logs(job_id, level, after, limit))

    def count_logs(self, job_id: uuid.UUID | str, *, max_pages: int = 100) -> int:
        total, cursor = 0, None
        for _ in range(max_pages):
            page = self.logs(job_id, after=cursor, limit=200)
            total += len(page.items)
            cursor = page.next_cursor
            if not cursor:
                break
        return total

    def set_progress(
        self, job_id: uuid.UUID | str, concept_id: uuid.UUID | str, *, completed: bool
    ) -> ConceptProgress:
        return self._run(_Calls.progress(job_id, concept_id, completed))

    def quiz_attempt(
        self, job_id: uuid.UUID | str, concept_id: uuid.UUID | str, answers: Mapping[str, list[int]]
    ) -> QuizResult:
        return self._run(_Calls.quiz_attempt(job_id, concept_id, answers))

    def events(
        self,
        job_id: uuid.UUID | str,
        *,
        last_event_id: str | None = None,
        reconnects: int = 5,
        read_timeout: float = 60.0,
    ) -> Generator[Event, None, None]:
        """Follow the job's SSE stream until a terminal event, resuming after disconnects."""
        path = f"{API}/roadmaps/{job_id}/events"
        last_id, failures = last_event_id, 0
        while True:
            headers = self._headers({"Last-Event-ID": last_id} if last_id else None)
            try:
                with connect_sse(
                    self.http, "GET", path, headers=headers,
                    timeout=httpx.Timeout(10.0, read=read_timeout),
                ) as source:  # fmt: skip
                    if source.response.status_code != 200:
                        source.response.read()
                        _parse(_Call("GET", path, None), source.response)
                    for sse in source.iter_sse():
                        event = _to_event(sse)
                        if event is None:
                            continue
                        failures = 0
                        last_id = event.id or last_id
                        yield event
                        if event.is_terminal:
                            return
            except (httpx.TransportError, SSEError):
                pass
            failures += 1
            if failures > reconnects:
                raise ApiError(0, {"title": "event stream lost", "detail": path}, "GET", path)
            time.sleep(min(0.2 * 2**failures, 3.0))

    def wait(self, job_id: uuid.UUID | str, *, max_wait: float = 300.0) -> Roadmap:
        """Poll until the job reaches a terminal status (or `max_wait` seconds passed)."""
        deadline = time.monotonic() + max_wait
        while True:
            roadmap = self.get_roadmap(job_id)
            if roadmap.is_terminal or time.monotonic() > deadline:
                return roadmap
            time.sleep(0.5)


class AsyncRoadmapClient(_Base):
    """The same API for asyncio code (and in-process tests through httpx.ASGITransport)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(token)
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

    async def register(self, email: str, password: str, display_name: str | None = None) -> User:
        return await self._run(_Calls.register(email, password, display_name))

    async def login(self, email: str, password: str) -> Token:
        token = await self._run(_Calls.token(email, password))
        self.token = token.access_token
        return token

    async def me(self) -> User:
        return await self._run(_Calls.me())

    async def create_api_key(self, name: str) -> ApiKey:
        return await self._run(_Calls.create_api_key(name))

    async def list_api_keys(self) -> ApiKeyList:
        return await self._run(_Calls.list_api_keys())

    async def delete_api_key(self, key_id: uuid.UUID | str) -> None:
        await self._run(_Calls.delete_api_key(key_id))

    async def create_roadmap(self, **request: Any) -> JobAccepted:
        return await self._run(_Calls.create_roadmap(request))

    async def list_roadmaps(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> RoadmapPage:
        return await self._run(_Calls.list_roadmaps(status, limit, cursor))

    async def get_roadmap(self, job_id: uuid.UUID | str) -> Roadmap:
        return await self._run(_Calls.roadmap(job_id))

    async def get_roadmap_json(self, job_id: uuid.UUID | str) -> dict[str, Any]:
        return await self._run(_Calls.roadmap_raw(job_id))

    async def get_concept(
        self, job_id: uuid.UUID | str, concept_id: uuid.UUID | str, *, version: int | None = None
    ) -> ConceptDetail:
        return await self._run(_Calls.concept(job_id, concept_id, version))

    async def review(
        self, job_id: uuid.UUID | str, *, approve: bool, feedback: str | None = None
    ) -> JobAccepted:
        return await self._run(_Calls.review(job_id, approve, feedback))

    async def cancel(self, job_id: uuid.UUID | str) -> JobAccepted:
        return await self._run(_Calls.action(job_id, "cancel"))

    async def retry(self, job_id: uuid.UUID | str) -> JobAccepted:
        return await self._run(_Calls.action(job_id, "retry"))

    async def regenerate(
        self,
        job_id: uuid.UUID | str,
        concept_id: uuid.UUID | str,
        kinds: list[ContentKind],
        instructions: str | None = None,
    ) -> RegenerateAccepted:
        return await self._run(_Calls.regenerate(job_id, concept_id, kinds, instructions))

    async def delete_roadmap(self, job_id: uuid.UUID | str) -> None:
        await self._run(_Calls.delete(job_id))

    async def logs(
        self,
        job_id: uuid.UUID | str,
        *,
        level: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> LogPage:
        return await self._run(_Calls.logs(job_id, level, after, limit))

    async def count_logs(self, job_id: uuid.UUID | str, *, max_pages: int = 100) -> int:
        total, cursor = 0, None
        for _ in range(max_pages):
            page = await self.logs(job_id, after=cursor, limit=200)
            total += len(page.items)
            cursor = page.next_cursor
            if not cursor:
                break
        return total

    async def set_progress(
        self, job_id: uuid.UUID | str, concept_id: uuid.UUID | str, *, completed: bool
    ) -> ConceptProgress:
        return await self._run(_Calls.progress(job_id, concept_id, completed))

    async def quiz_attempt(
        self, job_id: uuid.UUID | str, concept_id: uuid.UUID | str, answers: Mapping[str, list[int]]
    ) -> QuizResult:
        return await self._run(_Calls.quiz_attempt(job_id, concept_id, answers))

    async def events(
        self,
        job_id: uuid.UUID | str,
        *,
        last_event_id: str | None = None,
        reconnects: int = 5,
        read_timeout: float = 60.0,
    ) -> AsyncGenerator[Event, None]:
        """Follow the job's SSE stream until a terminal event, resuming after disconnects."""
        path = f"{API}/roadmaps/{job_id}/events"
        last_id, failures = last_event_id, 0
        while True:
            headers = self._headers({"Last-Event-ID": last_id} if last_id else None)
            try:
                async with aconnect_sse(
                    self.http, "GET", path, headers=headers,
                    timeout=httpx.Timeout(10.0, read=read_timeout),
                ) as source:  # fmt: skip
                    if source.response.status_code != 200:
                        await source.response.aread()
                        _parse(_Call("GET", path, None), source.response)
                    async for sse in source.aiter_sse():
                        event = _to_event(sse)
                        if event is None:
                            continue
                        failures = 0
                        last_id = event.id or last_id
                        yield event
                        if event.is_terminal:
                            return
            except (httpx.TransportError, SSEError):
                pass
            failures += 1
            if failures > reconnects:
                raise ApiError(0, {"title": "event stream lost", "detail": path}, "GET", path)
            await asyncio.sleep(min(0.2 * 2**failures, 3.0))

    async def wait(self, job_id: uuid.UUID | str, *, max_wait: float = 300.0) -> Roadmap:
        """Poll until the job reaches a terminal status (or `max_wait` seconds passed)."""
        deadline = time.monotonic() + max_wait
        while True:
            roadmap = await self.get_roadmap(job_id)
            if roadmap.is_terminal or time.monotonic() > deadline:
                return roadmap
            await asyncio.sleep(0.5)
