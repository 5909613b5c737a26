"""Issue 14, item 3: slow or oversized clients are bounded.

The API's server protocol (``roadmap_api.http_limits``) bounds how long a request's
headers may take, how long its body may pause and take in all, and how large its headers
may be. Before (uvicorn alone): 400 connections sending half a header were all still
open 30 s later, a body trickling a byte a second was read for as long as it trickled,
and an 8 MiB header was answered 200.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 1.0
BODY_IDLE_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 3.0
MAX_HEADER_BYTES = 16 * 1024  # the default
SLACK_S = 2.0  # the timers fire on a busy shared machine
HALF_HEADERS = 400


async def until_closed(reader: asyncio.StreamReader, bound_s: float) -> tuple[bytes, float]:
    """What the server sent before closing the connection, and when it closed."""
    started = time.monotonic()
    answer = b""
    try:
        async with asyncio.timeout(bound_s):
            while chunk := await reader.read(65536):
                answer += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return answer, time.monotonic() - started


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


async def test_i14_03_slow_headers_slow_bodies_and_huge_headers_are_cut_off(stack: Stack) -> None:
    stack.start(
        content_workers=0,
        logs_worker=False,
        HTTP_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        HTTP_BODY_IDLE_TIMEOUT_S=str(BODY_IDLE_TIMEOUT_S),
        HTTP_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
    )
    assert stack.api is not None
    port = stack.api.port

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port)

    # Half a header (and nothing at all) on many connections: all closed in time.
    half = [await connect() for _ in range(HALF_HEADERS)]
    silent = [await connect() for _ in range(10)]
    for _, writer in half:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    closed = await asyncio.gather(
        *(until_closed(r, HEADER_TIMEOUT_S + 30) for r, _ in [*half, *silent])
    )
    assert max(at for _, at in closed) <= HEADER_TIMEOUT_S + SLACK_S, max(at for _, at in closed)
    assert {status_of(answer) for answer, _ in closed[:HALF_HEADERS]} == {408}
    assert {answer for answer, _ in closed[HALF_HEADERS:]} == {b""}
    for _, writer in [*half, *silent]:
        writer.close()

    body_start = (
        b"POST /api/v1/roadmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    # A body that stops: cut off after the idle bound.
    reader, writer = await connect()
    writer.write(body_start + b'{"goal": ')
    answer, at = await until_closed(reader, 30)
    assert status_of(answer) == 408, answer
    assert at <= BODY_IDLE_TIMEOUT_S + SLACK_S, at
    writer.close()

    # A body trickling a byte at a time, never idle long: cut off after the total bound.
    reader, writer = await connect()
    writer.write(body_start)
    started = time.monotonic()

    async def trickle() -> None:
        try:
            for _ in range(1000):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(BODY_IDLE_TIMEOUT_S / 4)
        except (ConnectionResetError, BrokenPipeError):
            pass

    dripping = asyncio.create_task(trickle())
    answer, _ = await until_closed(reader, 30)
    took = time.monotonic() - started
    dripping.cancel()
    writer.close()
    assert status_of(answer) == 408, answer
    assert BODY_TIMEOUT_S - 0.5 <= took <= BODY_TIMEOUT_S + SLACK_S, took

    # Headers over the limit: 431, whether they come in one piece or as 8 MiB in chunks.
    for size, chunk in ((MAX_HEADER_BYTES + 1024, None), (8 * 1024 * 1024, 64 * 1024)):
        reader, writer = await connect()
        head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"x" * size + b"\r\n\r\n"
        try:
            for offset in range(0, len(head), chunk or len(head)):
                writer.write(head[offset : offset + (chunk or len(head))])
                await writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            pass
        answer, _ = await until_closed(reader, 30)
        assert status_of(answer) == 431, (size, answer[:200])
        assert b"application/problem+json" in answer
        writer.close()

    # A request just under the limit, and an ordinary one, are served as before.
    for extra in (MAX_HEADER_BYTES - 1024, 0):
        reader, writer = await connect()
        writer.write(
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Pad: "
            + b"p" * extra
            + b"\r\n\r\n"
        )
        answer, _ = await until_closed(reader, 30)
        assert status_of(answer) == 200, answer[:200]
        writer.close()
