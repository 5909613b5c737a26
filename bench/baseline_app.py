"""The "before": one FastAPI service that generates the whole roadmap inside the request.

This is what the original guide's single-service system did, rebuilt on *our* code so the
comparison measures the architecture and nothing else: the same request model, the same
pipeline functions (plan → validate/repair → tutorial, resources and quiz of every
concept), the same LLM client with the same per-process concurrency budget
(`LLM_CONCURRENCY`), against the same fake LLM with the same latency. It answers 200 with a
summary once everything is generated, or 502 when planning fails.

It writes nothing to a database and has no global rate limiter: both only make it faster,
so the comparison errs in the baseline's favour.

Run: `OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 uvicorn bench.baseline_app:app` from the
repo root (the benchmark `single_vs_arch` starts it for you).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status

from roadmap_core.domain import ContentKind, RoadmapRequest
from roadmap_core.llm.client import LLMClient
from roadmap_core.llm.errors import LLMError
from roadmap_core.pipeline import PlanLimits, concept_contexts, generate_content, plan_roadmap
from roadmap_core.settings import LLMSettings


class BaselineSettings(LLMSettings):
    pass


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = BaselineSettings()
    llm = LLMClient(settings)  # per process, on this loop; no Redis limiter
    app.state.settings = settings
    app.state.llm = llm
    app.state.limits = PlanLimits.from_settings(settings)
    try:
        yield
    finally:
        await llm.aclose()


app = FastAPI(title="Roadmap baseline (generation inside the request)", lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/roadmaps")
async def create_roadmap(body: RoadmapRequest, request: Request) -> dict[str, Any]:
    llm: LLMClient = request.app.state.llm
    started = time.perf_counter()
    try:
        plan = await plan_roadmap(llm, body, request.app.state.limits)
        if not plan.ok:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, "the plan did not validate")
        contexts = list(concept_contexts(plan.framework).values())
        items = await asyncio.gather(
            *(
                generate_content(llm, kind, body, context)
                for context in contexts
                for kind in ContentKind
            )
        )
    except LLMError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"LLM call failed: {exc.reason}") from exc
    return {
        "status": "completed",
        "concepts": len(contexts),
        "items": len(items),
        "seconds": round(time.perf_counter() - started, 3),
    }
