"""Helpers for the API's tests and cross-service tests (no pytest import here).

Rows are created through the same repositories the services use; tokens are minted with
the same code the login endpoint uses.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from sqlalchemy import select, update

from roadmap_api.auth.tokens import issue_access_token
from roadmap_api.settings import ApiSettings

if TYPE_CHECKING:
    import httpx
from roadmap_core import domain
from roadmap_core.broker_queues import task_of
from roadmap_core.contracts import LogEvent
from roadmap_core.domain import ContentKind, ItemStatus, JobStatus, LogLevel
from roadmap_db.engine import ProcessDatabase
from roadmap_db.models import ContentItem, ContentResult, RoadmapJob, User
from roadmap_db.repositories import frameworks, logs

# Test-only credentials: never valid outside a test database.
PASSWORD = "a-long-test-passphrase-42"  # noqa: S105
# 64+ bytes: long enough for every HMAC size, so PyJWT never warns about it.
TEST_SECRET = "test-secret-" + "0123456789abcdef" * 4


@dataclass(frozen=True, slots=True)
class Account:
    id: uuid.UUID
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def token_for(user_id: uuid.UUID, secret: str = TEST_SECRET, version: int = 0) -> str:
    return issue_access_token(ApiSettings(jwt_secret_key=secret), user_id, version).token


async def make_account(
    db: ProcessDatabase, email: str, password_hash: str, *, is_admin: bool = False
) -> Account:
    async with db.transaction() as session:
        user = User(email=email, password_hash=password_hash, is_admin=is_admin)
        session.add(user)
        await session.flush()
        user_id = user.id
    return Account(id=user_id, email=email, token=token_for(user_id))


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "goal": "Learn Rust for embedded work",
        "level": "intermediate",
        "weekly_hours": 6,
        "weeks": 12,
    }
    body.update(overrides)
    return body


def framework(n_concepts: int = 2) -> domain.Framework:
    concepts = [
        domain.Concept(
            id=f"concept-{i}",
            title=f"Concept {i}",
            summary=f"What concept {i} is about",
            difficulty=2,
            estimated_hours=2.0,
            prerequisites=[f"concept-{i - 1}"] if i else [],
        )
        for i in range(n_concepts)
    ]
    return domain.Framework(
        title="Embedded Rust",
        summary="From blinky to async drivers",
        stages=[
            domain.Stage(
                title="Basics", modules=[domain.Module(title="Toolchain", concepts=concepts)]
            )
        ],
    )


QUIZ = {
    "questions": [
        {
            "id": "q1",
            "type": "single_choice",
            "prompt": "Which crate provides embedded-hal traits?",
            "options": ["embedded-hal", "tokio"],
            "correct": [0],
            "explanation": "embedded-hal defines the traits.",
        },
        {
            "id": "q2",
            "type": "multiple_choice",
            "prompt": "Which are Rust targets?",
            "options": ["thumbv7em-none-eabihf", "riscv32imac-unknown-none-elf", "jvm"],
            "correct": [0, 1],
            "explanation": "The JVM is not a Rust target.",
        },
    ]
}
TUTORIAL = {
    "title": "Toolchain",
    "markdown": "# Toolchain\n\nInstall rustup.",
    "estimated_minutes": 20,
}
RESOURCES = {
    "resources": [
        {"title": "The Embedded Rust Book", "url": "https://docs.rust-embedded.org/book/",
         "type": "book", "description": "",
         "link": {"status": "ok", "checked_at": "2026-12-06T12:00:00Z", "http_status": 200,
                  "final_url": "https://docs.rust-embedded.org/book/",
                  "content_type": "text/html", "page_title": "Introduction - The Embedded Rust Book",
                  "error": None}}
    ],
    "search_query": "Toolchain Embedded Rust",
    "search_provider": "brave",
}  # fmt: skip
BODIES: dict[ContentKind, dict[str, Any]] = {
    ContentKind.tutorial: TUTORIAL,
    ContentKind.resources: RESOURCES,
    ContentKind.quiz: QUIZ,
}


@dataclass(slots=True)
class SeededJob:
    id: uuid.UUID
    concept_ids: list[uuid.UUID] = field(default_factory=list)
    round_id: uuid.UUID | None = None


class Seeder:
    """Rows in the states the workers would leave them in."""

    def __init__(self, db: ProcessDatabase) -> None:
        self.db = db

    async def job(
        self,
        owner: Account,
        *,
        status: JobStatus = JobStatus.queued,
        concepts: int = 0,
        item_status: ItemStatus = ItemStatus.queued,
        review: bool = False,
        with_results: bool = False,
        tokens: int = 0,
    ) -> SeededJob:
        async with self.db.transaction() as session:
            job = RoadmapJob(
                owner_id=owner.id,
                request=domain.RoadmapRequest.model_validate(request_body()).model_dump(
                    mode="json"
                ),
                status=status,
                title="Embedded Rust" if concepts else None,
                prompt_tokens=tokens,
            )
            session.add(job)
            await session.flush()
            seeded = SeededJob(id=job.id)
            if concepts:
                plan = framework(concepts)
                seeded.concept_ids = await frameworks.replace_framework(
                    session, job.id, plan, item_status=item_status
                )
                if review:
                    seeded.round_id = (await frameworks.add_review_round(session, job.id, plan)).id
        if with_results:
            for concept_id in seeded.concept_ids:
                await self.add_results(concept_id)
        return seeded

    async def add_results(
        self, concept_id: uuid.UUID, *, instructions: str | None = None
    ) -> dict[ContentKind, int]:
        """A new succeeded version of each content item of the concept."""
        versions = {}
        async with self.db.transaction() as session:
            items = (
                await session.execute(
                    select(ContentItem).where(ContentItem.concept_id == concept_id)
                )
            ).scalars()
            for item in items:
                item.version += 1
                item.status = ItemStatus.succeeded
                kind = ContentKind(item.kind)
                body = dict(BODIES[kind])
                if kind is ContentKind.tutorial:
                    body["markdown"] = f"# Version {item.version}\n\n{TUTORIAL['markdown']}"
                session.add(
                    ContentResult(
                        item_id=item.id,
                        version=item.version,
                        body=body,
                        model="fake-model",
                        instructions=instructions,
                    )
                )
                versions[kind] = item.version
        return versions

    async def set_items(
        self, job_id: uuid.UUID, status: ItemStatus, *, kind: ContentKind | None = None
    ) -> None:
        async with self.db.transaction() as session:
            stmt = update(ContentItem).where(ContentItem.job_id == job_id)
            if kind is not None:
                stmt = stmt.where(ContentItem.kind == kind)
            await session.execute(stmt.values(status=status))

    async def set_job(self, job_id: uuid.UUID, **values: Any) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(RoadmapJob).where(RoadmapJob.id == job_id).values(**values)
            )

    async def get_job(self, job_id: uuid.UUID) -> RoadmapJob:
        async with self.db.sessions() as session:
            job = await session.get(RoadmapJob, job_id)
            assert job is not None
            return job

    async def items(self, job_id: uuid.UUID) -> list[ContentItem]:
        async with self.db.sessions() as session:
            stmt = select(ContentItem).where(ContentItem.job_id == job_id)
            return list((await session.execute(stmt)).scalars())

    async def job_count(self) -> int:
        async with self.db.sessions() as session:
            return len((await session.execute(select(RoadmapJob.id))).all())

    async def logs(
        self,
        job_id: uuid.UUID,
        levels: list[LogLevel],
        details: list[dict[str, Any]] | None = None,
    ) -> list[LogEvent]:
        """Stored events as the logs worker writes them; ``details`` as stored (JSON)."""
        events = [
            LogEvent(
                event_id=uuid.uuid4(),
                job_id=job_id,
                level=level,
                message=f"event {i}",
                details=details[i] if details else {"kind": "plan_failed"},
                ts=datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC),
            )
            for i, level in enumerate(levels)
        ]
        async with self.db.transaction() as session:
            await logs.insert_log_events(session, events)
        return events


@dataclass(frozen=True, slots=True)
class QueuedTask:
    name: str
    payload: dict[str, Any]
    headers: dict[str, Any]


async def queued_tasks(redis: Redis, queue: str) -> list[QueuedTask]:
    """The Celery messages waiting in ``queue``, oldest first."""
    raw = await redis.lrange(queue, 0, -1)
    return [QueuedTask(*task_of(entry)) for entry in reversed(raw)]


@dataclass(slots=True)
class SseEvent:
    event: str | None = None
    id: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


def parse_sse(text: str) -> list[SseEvent]:
    """Events of a ``text/event-stream`` body (comment-only blocks are kept as events)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event = SseEvent()
        data_lines = []
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                event.comments.append(value)
            elif name == "event":
                event.event = value
            elif name == "id":
                event.id = value
            elif name == "data":
                data_lines.append(value)
        event.data = "\n".join(data_lines)
        events.append(event)
    return events


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The RFC 9457 body of ``response``, after checking its status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body
