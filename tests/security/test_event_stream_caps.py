"""Issue 14, item 2: one user cannot take the event streams away from everybody else.

Against a real API process: a per-user cap (``SSE_MAX_STREAMS_PER_USER``) answers 429 and a
per-process cap (``SSE_MAX_STREAMS``, below the Redis pool the streams read from) answers
503, both with ``Retry-After`` and before any byte of the stream; other users' streams keep
delivering events. A Redis error in the middle of a stream ends it with an SSE ``retry:``
hint, never a silent close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
from redis.asyncio import Redis

from roadmap_devservers.embedded import EmbeddedRedis
from tests.support.capture import Capture
from tests.support.stack import Stack, small_request

pytestmark = pytest.mark.slow

API = "/api/v1"


@dataclass
class Follower:
    token: str
    job_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def url(self) -> str:
        return f"{API}/roadmaps/{self.job_id}/events"


async def follower(client: httpx.AsyncClient, capture: Capture) -> Follower:
    """A fresh user with one queued roadmap (no worker runs, so it stays queued)."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    capture.secrets.add(password)
    created = await client.post(f"{API}/auth/register", json={"email": email, "password": password})
    assert created.status_code == 201, created.text
    login = await client.post(f"{API}/auth/token", data={"username": email, "password": password})
    token = login.json()["access_token"]
    capture.secrets.add(token)
    job = await client.post(
        f"{API}/roadmaps", json=small_request(), headers={"Authorization": f"Bearer {token}"}
    )
    assert job.status_code == 202, job.text
    return Follower(token, job.json()["id"])


class OpenStream:
    """A stream whose response head arrived; its body is read in the background."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.text = ""
        self.closed_at: float | None = None
        self.closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            async for chunk in self.response.aiter_text():
                self.text += chunk
        self.closed_at = time.monotonic()
        self.closed.set()

    async def wait_for(self, needle: str, within: float) -> bool:
        deadline = time.monotonic() + within
        while needle not in self.text:
            if self.closed_at is not None or time.monotonic() > deadline:
                return needle in self.text
            await asyncio.sleep(0.05)
        return True

    async def aclose(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._reader
        await self.response.aclose()


@contextlib.asynccontextmanager
async def streams(base: str) -> AsyncIterator[tuple[httpx.AsyncClient, list[OpenStream]]]:
    opened: list[OpenStream] = []
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base, timeout=httpx.Timeout(20.0), limits=limits
    ) as client:
        try:
            yield client, opened
        finally:
            await asyncio.gather(*(s.aclose() for s in opened))


async def open_stream(
    client: httpx.AsyncClient, who: Follower, opened: list[OpenStream]
) -> httpx.Response:
    """GET the stream; a 200 stays open (in ``opened``), anything else is read and closed."""
    request = client.build_request("GET", who.url, headers=who.headers)
    response = await client.send(request, stream=True)
    if response.status_code == 200:
        opened.append(OpenStream(response))
    else:
        await response.aread()
        await response.aclose()
    return response


async def publish_item(redis_url: str, job_id: str) -> None:
    """Append an ``item`` entry to the job's progress stream, as the content worker does."""
    data = {
        "item_id": str(uuid.uuid4()),
        "concept_id": str(uuid.uuid4()),
        "concept_key": "joins",
        "kind": "tutorial",
        "status": "succeeded",
        "version": 1,
        "progress": {"total": 3, "done": 1, "failed": 0, "pending": 2, "cancelled": 0},
    }
    redis = Redis.from_url(redis_url)
    try:
        await redis.xadd(f"roadmap:job:{job_id}:events", {"type": "item", "data": json.dumps(data)})
    finally:
        await redis.aclose()


def assert_refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["status"] == status


async def test_one_user_gets_429_past_the_per_user_cap_and_others_keep_streaming(
    stack: Stack, redis_url: str, capture: Capture
) -> None:
    # The Redis pool for streams is sized from SSE_MAX_STREAMS: 40 streams by one user would
    # take all of it if nothing capped them per user.
    stack.start(content_workers=0, logs_worker=False, SSE_MAX_STREAMS="40", SSE_BLOCK_MS="1000")
    assert stack.api is not None
    async with streams(stack.api.url) as (client, opened):
        hog = await follower(client, capture)
        other = await follower(client, capture)
        answers = await asyncio.gather(*(open_stream(client, hog, opened) for _ in range(40)))
        statuses = sorted(r.status_code for r in answers)
        assert statuses.count(200) == 10, statuses
        for refused in (r for r in answers if r.status_code != 200):
            assert_refused(refused, 429)
            assert refused.json()["quota"] == "event_streams"

        answer = await open_stream(client, other, opened)
        assert answer.status_code == 200, answer.text
        theirs = opened[-1]
        assert await theirs.wait_for("event: snapshot", within=5)
        # Still open and delivering well after the ~2 s a starved stream used to last.
        await asyncio.sleep(4)
        assert theirs.closed_at is None, theirs.text
        await publish_item(redis_url, other.job_id)
        assert await theirs.wait_for("event: item", within=5), theirs.text

        # A slot is free again as soon as one of the user's streams ends.
        await opened[0].aclose()
        opened.pop(0)
        deadline = time.monotonic() + 10
        while (again := await open_stream(client, hog, opened)).status_code != 200:
            assert time.monotonic() < deadline, again.text
            await asyncio.sleep(0.2)


async def test_global_cap_answers_503_before_the_stream_starts(
    stack: Stack, redis_url: str, capture: Capture
) -> None:
    stack.start(content_workers=0, logs_worker=False, SSE_MAX_STREAMS="12", SSE_BLOCK_MS="1000")
    assert stack.api is not None
    async with streams(stack.api.url) as (client, opened):
        users = [await follower(client, capture) for _ in range(4)]
        for user in users[:3]:
            for _ in range(4):
                await open_stream(client, user, opened)
        assert len(opened) == 12
        late = await open_stream(client, users[3], opened)
        assert_refused(late, 503)
        # The twelve that were admitted still stream.
        await publish_item(redis_url, users[0].job_id)
        assert await opened[0].wait_for("event: item", within=5), opened[0].text
        assert all(s.closed_at is None for s in opened)


async def test_redis_error_mid_stream_ends_with_a_retry_hint(
    clean_state: str,
    own_redis: EmbeddedRedis,
    stack_on: Callable[..., Stack],
    capture: Capture,
) -> None:
    stack = stack_on(database_url=clean_state, redis_url=own_redis.url)
    stack.start(content_workers=0, logs_worker=False, SSE_BLOCK_MS="500")
    assert stack.api is not None
    async with streams(stack.api.url) as (client, opened):
        user = await follower(client, capture)
        answer = await open_stream(client, user, opened)
        assert answer.status_code == 200
        stream = opened[0]
        assert await stream.wait_for("event: snapshot", within=5)
        seen = len(stream.text)
        own_redis.stop()
        try:
            await asyncio.wait_for(stream.closed.wait(), timeout=20)
        except TimeoutError:
            raise AssertionError("the stream stayed open with Redis gone") from None
        tail = stream.text[seen:]
        assert any(line.startswith("retry:") for line in tail.splitlines()), repr(tail)
        # The hint is the last thing sent: the client learns when to reconnect.
        assert tail.strip().splitlines()[-1].startswith(("retry:", ":")), repr(tail)
