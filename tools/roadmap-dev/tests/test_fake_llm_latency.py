"""The fake's latency runs from a request's arrival: its own work is part of it, not added.

On a clock of the test's own (no timing of real time): generating an answer "takes" 150 ms,
and the fake then waits only what is left of the configured latency.
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

import httpx
import pytest

from roadmap_core.domain import IntentAnalysis, RoadmapRequest
from roadmap_core.llm import PromptName, render_messages, response_format
from roadmap_dev.fake_llm import FakeConfig, generate, server

WORK_S = 0.150


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000.0]
    monkeypatch.setattr(
        server, "time", types.SimpleNamespace(time=lambda: now[0], monotonic=lambda: now[0])
    )
    real_generate = generate.generate

    def slow_generate(*args: Any, **kwargs: Any) -> Any:
        now[0] += WORK_S
        return real_generate(*args, **kwargs)

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(generate, "generate", slow_generate)
    monkeypatch.setattr(server, "asyncio", types.SimpleNamespace(sleep=sleep, Lock=asyncio.Lock))
    return slept


def _body(stream: bool) -> dict[str, Any]:
    request = RoadmapRequest(goal="Learn SQL", level="beginner", weekly_hours=4, weeks=5)
    return {
        "model": "fake-model",
        "messages": render_messages(PromptName.intent, language="en", request=request),
        "response_format": response_format(IntentAnalysis),
        "stream": stream,
    }


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "first-token"])
async def test_latency_counts_from_arrival(waits: list[float], stream: bool) -> None:
    app = server.create_app(FakeConfig(latency_ms=200))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as client:
        response = await client.post("/v1/chat/completions", json=_body(stream))
    assert response.status_code == 200
    assert waits[0] == pytest.approx(0.200 - WORK_S)


async def test_work_longer_than_the_latency_adds_no_wait(waits: list[float]) -> None:
    app = server.create_app(FakeConfig(latency_ms=100))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as client:
        response = await client.post("/v1/chat/completions", json=_body(False))
    assert response.status_code == 200
    assert waits == []
