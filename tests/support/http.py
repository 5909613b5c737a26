"""Many users against a real API process at once (httpx, asyncio), every answer recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tests.support.capture import AsyncRecordingTransport, Capture
from tests.support.inproc import ApiUser, new_user


@asynccontextmanager
async def api_client(
    url: str, capture: Capture, *, timeout_s: float = 30.0, connections: int = 100
) -> AsyncIterator[httpx.AsyncClient]:
    """An async client on ``url`` whose error bodies go to the capture dir (promise 17)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    transport = AsyncRecordingTransport(capture, httpx.AsyncHTTPTransport(limits=limits))
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=timeout_s) as client:
        yield client


async def new_users(http: httpx.AsyncClient, capture: Capture, count: int) -> list[ApiUser]:
    """``count`` registered and logged-in users (the API's registration limit must allow it)."""
    return list(await asyncio.gather(*(new_user(http, capture.secrets) for _ in range(count))))
