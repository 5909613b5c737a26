"""Benchmark 10 — links: what checking resource links adds to a concept's generation.

A concept's content is three LLM calls run concurrently (tutorial, resources, quiz);
resources first search the web and check the results. This benchmark times a concept
(the three kinds at once, as the worker runs them) with the real link checker and with
the search results passed on unchecked, against the fake servers at realistic latency:
search 300 ms, every page request (each redirect hop) 100 ms, and an LLM answering
after 500 ms plus its completion tokens at 100 tokens/s. Concepts alternate between the
two ways so drift on the machine hits both alike. Target: checking adds ≤ 20 % to the
concept's median time.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.lib.context import Context
from bench.lib.results import BenchResult, at_most
from roadmap_core.domain import ContentKind, LinkCheck, LinkStatus, RoadmapRequest
from roadmap_core.llm import LLMClient
from roadmap_core.pipeline import (
    ConceptContext,
    PlanLimits,
    ResourceSearch,
    concept_contexts,
    generate_content,
    plan_roadmap,
)
from roadmap_core.search import LinkChecker, SearxngSearch
from roadmap_core.settings import LLMSettings
from roadmap_dev.fake_llm import fake_llm_server
from roadmap_dev.fake_search import MOUNT_PATH

TITLE = "Links: link checking's share of a concept's generation"
SEARCH_MS = 300
PAGE_MS = 100
LLM_MS = 500
TOKENS_PER_S = 100
TARGET = 0.20
REQUEST = RoadmapRequest(
    goal="Learn Kubernetes operations", level="beginner", weekly_hours=6, weeks=8
)


class _Unchecked(LinkChecker):
    """The baseline: every search result is taken as it is, nothing fetched."""

    async def check_many(self, urls: Sequence[str]) -> list[LinkCheck]:
        now = datetime.now(UTC)
        return [
            LinkCheck(status=LinkStatus.ok, checked_at=now, http_status=None, final_url=u)
            for u in urls
        ]


class _Timed(LinkChecker):
    """The real checker, timing each query's checks (all of its results at once)."""

    durations: list[float]

    async def check_many(self, urls: Sequence[str]) -> list[LinkCheck]:
        started = time.perf_counter()
        try:
            return await super().check_many(urls)
        finally:
            self.durations.append(time.perf_counter() - started)


def run(ctx: Context) -> dict[str, Any]:
    concepts = int(ctx.scale(8, 2))
    result = BenchResult(TITLE)
    result.settings = {
        "fake search": f"{SEARCH_MS} ms per search, {PAGE_MS} ms per page request (each redirect hop)",
        "fake LLM": f"{LLM_MS} ms + completion tokens at {TOKENS_PER_S} tokens/s",
        "search results": "10 per query (6 answer, 4 fail: 404, 500, redirects to a private and a metadata address)",
        "link checks": "all results of a query at once (LINK_CHECK_CONCURRENCY=10), 5 s bound each",
        "per repeat": f"{concepts} concepts with checking and {concepts} without, alternating",
        "repeats": str(ctx.repeat),
    }
    checked_s: list[float] = []
    unchecked_s: list[float] = []
    resources_checked_s: list[float] = []
    resources_unchecked_s: list[float] = []
    checks_s: list[float] = []
    raw: list[dict[str, Any]] = []
    with fake_llm_server(latency_ms=LLM_MS, tokens_per_s=TOKENS_PER_S, seed=3) as fake:
        search_url = fake.url + MOUNT_PATH
        httpx.put(
            f"{search_url}/_control/config",
            json={"search_latency_ms": SEARCH_MS, "page_latency_ms": PAGE_MS},
            timeout=10,
        ).raise_for_status()
        for _ in range(ctx.repeat):
            rounds = asyncio.run(_repeat(fake.base_url, search_url, concepts))
            raw.append(rounds)
            checked_s.append(statistics.median(rounds["checked"]))
            unchecked_s.append(statistics.median(rounds["unchecked"]))
            resources_checked_s.append(statistics.median(rounds["resources_checked"]))
            resources_unchecked_s.append(statistics.median(rounds["resources_unchecked"]))
            checks_s.append(statistics.median(rounds["checks"]))
    added = [c / u - 1 for c, u in zip(checked_s, unchecked_s, strict=True)]
    result.figure(
        "links_concept_unchecked_s: concept, results unchecked",
        "s",
        unchecked_s,
        "{:.3f}",
        key="links_concept_unchecked_s",
    )
    result.figure(
        "links_concept_checked_s: concept, links checked",
        "s",
        checked_s,
        "{:.3f}",
        key="links_concept_checked_s",
    )
    share = result.figure(
        "links_check_overhead: checking's share of a concept's time", "%",
        [100 * a for a in added], "{:.1f}", key="links_check_overhead",
        goal=f"≤ {100 * TARGET:g} %", passed=at_most(added, TARGET),
    )  # fmt: skip
    result.figure(
        "links_resources_unchecked_s: resources item alone, unchecked",
        "s",
        resources_unchecked_s,
        "{:.3f}",
        key="links_resources_unchecked_s",
    )
    result.figure(
        "links_resources_checked_s: resources item alone, checked",
        "s",
        resources_checked_s,
        "{:.3f}",
        key="links_resources_checked_s",
    )
    result.figure(
        "links_check_s: checking one query's 10 results", "s", checks_s, "{:.3f}",
        key="links_check_s",
    )  # fmt: skip
    result.target(
        "link checking adds ≤ 20 % to a concept's generation time",
        f"≤ {100 * TARGET:g} %", share.text(), at_most(added, TARGET),
        figure=share.name,
    )  # fmt: skip
    result.notes.append(
        "A concept's three kinds run concurrently, so the resources item's search and checks "
        "overlap the tutorial's longer call; the resources item alone is shown too."
    )
    result.raw = {"repeats": raw}
    return result.as_dict()


async def _repeat(llm_base_url: str, search_url: str, count: int) -> dict[str, list[float]]:
    llm = LLMClient(LLMSettings(openai_base_url=llm_base_url, llm_concurrency=16))
    timed = _Timed(allow_loopback=True, concurrency=10)
    timed.durations = []
    checked = ResourceSearch(SearxngSearch(search_url, timeout_s=10), timed)
    unchecked = ResourceSearch(SearxngSearch(search_url, timeout_s=10), _Unchecked())
    out: dict[str, list[float]] = {
        k: []
        for k in ("checked", "unchecked", "resources_checked", "resources_unchecked", "checks")
    }
    try:
        async with llm:
            plan = await plan_roadmap(llm, REQUEST, PlanLimits(max_concepts=max(count, 4)))
            contexts = list(concept_contexts(plan.framework).values())
            for i in range(count):
                context = contexts[i % len(contexts)]
                order = (checked, unchecked) if i % 2 == 0 else (unchecked, checked)
                for search in order:
                    total, resources = await _concept(llm, search, context)
                    label = "checked" if search is checked else "unchecked"
                    out[label].append(total)
                    out[f"resources_{label}"].append(resources)
    finally:
        await checked.aclose()
        await unchecked.aclose()
    out["checks"] = timed.durations
    return out


async def _concept(
    llm: LLMClient, search: ResourceSearch, context: ConceptContext
) -> tuple[float, float]:
    """(seconds for the concept's three kinds at once, seconds of its resources item)."""
    ends: dict[ContentKind, float] = {}
    started = time.perf_counter()

    async def one(kind: ContentKind) -> None:
        await generate_content(llm, kind, REQUEST, context, search=search)
        ends[kind] = time.perf_counter() - started

    await asyncio.gather(*(one(kind) for kind in ContentKind))
    return max(ends.values()), ends[ContentKind.resources]
