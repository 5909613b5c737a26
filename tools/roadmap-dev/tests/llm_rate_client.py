"""A separate client process for the global rate limit test (run as a script).

usage: llm_rate_client.py BASE_URL REDIS_URL KEY_PREFIX CALLS RPM WINDOW_S
Prints one JSON line: {"pid": ..., "ok": n, "errors": [...]}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from redis.asyncio import Redis

from roadmap_core.domain import IntentAnalysis, RoadmapRequest
from roadmap_core.llm import CallContext, LLMClient, LLMError, RedisRateLimiter, render_messages
from roadmap_core.settings import LLMSettings


async def main(
    base_url: str, redis_url: str, prefix: str, calls: int, rpm: int, window: float
) -> None:
    settings = LLMSettings(
        openai_base_url=base_url,
        llm_rpm=rpm,
        llm_rate_window_s=window,
        llm_rate_max_wait_s=60,
        llm_concurrency=8,
    )
    redis = Redis.from_url(redis_url)
    limiter = RedisRateLimiter(
        redis,
        rpm=settings.llm_rpm,
        tpm=settings.llm_tpm,
        window_s=settings.llm_rate_window_s,
        max_wait_s=settings.llm_rate_max_wait_s,
        key_prefix=prefix,
    )
    errors: list[str] = []
    ok = 0
    async with LLMClient(settings, limiter=limiter) as llm:

        async def one(i: int) -> None:
            nonlocal ok
            request = RoadmapRequest(
                goal=f"Learn topic {os.getpid()}-{i}", level="beginner", weekly_hours=3, weeks=3
            )
            try:
                await llm.structured(
                    IntentAnalysis,
                    render_messages("intent", language="en", request=request),
                    ctx=CallContext("intent_analysis"),
                )
                ok += 1
            except LLMError as exc:
                errors.append(str(exc))

        await asyncio.gather(*(one(i) for i in range(calls)))
    await redis.aclose()
    print(json.dumps({"pid": os.getpid(), "ok": ok, "errors": errors}))


if __name__ == "__main__":
    base, redis_url, prefix, calls, rpm, window = sys.argv[1:7]
    asyncio.run(main(base, redis_url, prefix, int(calls), int(rpm), float(window)))
