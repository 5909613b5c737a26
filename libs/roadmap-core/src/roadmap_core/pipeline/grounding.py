"""Resources grounded in web search: search, check the pages, let the model choose.

``find_sources`` asks the search provider for ``results`` pages, checks them all
concurrently and keeps, in rank order, up to ``offer`` that answered 2xx: a page
that fails is dropped and the next result takes its place. ``choose_checked``
keeps the model's choices whose URL is one of those pages (never one it made
up) and attaches each page's check. The query, provider and counts go to the
execution logs.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from pydantic import AnyHttpUrl, ValidationError

from roadmap_core.domain import (
    CheckedResource,
    CheckedResourceList,
    LinkCheck,
    LinkStatus,
    LogCategory,
    ResourceList,
)
from roadmap_core.logdetails import (
    DroppedLink,
    LinkCheckDetails,
    ResourcesDroppedDetails,
    ResourceSearchDetails,
)
from roadmap_core.logship import emit
from roadmap_core.pipeline.context import ConceptContext
from roadmap_core.search.linkcheck import LinkChecker
from roadmap_core.search.providers import SearchError, SearchProvider, SearchResult

# Checked pages offered to the model; the prompt asks for up to this many resources.
OFFER = 8
LOG_STEP = "resource_search"


@dataclass(slots=True)
class ResourceSearch:
    """What a worker needs to ground resources: a provider and a checker."""

    provider: SearchProvider
    checker: LinkChecker
    results: int = 10

    async def aclose(self) -> None:
        await self.provider.aclose()
        await self.checker.aclose()


@dataclass(frozen=True, slots=True)
class Source:
    url: str
    title: str
    snippet: str
    check: LinkCheck

    @property
    def page_title(self) -> str | None:
        return self.check.page_title

    @property
    def content_type(self) -> str | None:
        return self.check.content_type


@dataclass(frozen=True, slots=True)
class Sources:
    query: str
    provider: str
    offered: list[Source]


def search_query(context: ConceptContext) -> str:
    return f"{context.concept.title} {context.framework_title}"[:200]


def _key(url: str) -> str | None:
    try:
        return str(AnyHttpUrl(url))
    except ValidationError:
        return None


async def check_results(
    checker: LinkChecker, results: list[SearchResult], offer: int = OFFER
) -> tuple[list[Source], list[tuple[SearchResult, LinkCheck]]]:
    """(the first ``offer`` results that checked ok, in rank order; the ones dropped)."""
    checks = await checker.check_many([r.url for r in results])
    good: list[Source] = []
    dropped: list[tuple[SearchResult, LinkCheck]] = []
    for result, check in zip(results, checks, strict=True):
        if check.status is LinkStatus.ok and len(good) < offer:
            good.append(Source(result.url, result.title, result.snippet, check))
        elif check.status is not LinkStatus.ok:
            dropped.append((result, check))
    return good, dropped


async def find_sources(
    search: ResourceSearch | None,
    context: ConceptContext,
    *,
    job_id: uuid.UUID | None,
    concept_id: uuid.UUID | None = None,
) -> Sources:
    if search is None:
        raise SearchError("web search is not configured (SEARCH_PROVIDER)", retryable=False)
    query = search_query(context)
    started = time.perf_counter()
    results = await search.provider.search(query, count=search.results)
    searched_ms = (time.perf_counter() - started) * 1000.0
    emit(
        f"searched the web for resources: {query}",
        job_id=job_id,
        concept_id=concept_id,
        category=LogCategory.content,
        step=LOG_STEP,
        duration_ms=round(searched_ms, 1),
        details=ResourceSearchDetails(
            query=query,
            provider=search.provider.name,
            result_count=len(results),
            concept=context.concept.id,
        ),
    )
    started = time.perf_counter()
    good, dropped = await check_results(search.checker, results)
    emit(
        f"checked {len(results)} links: {len(good)} offered, {len(dropped)} dropped",
        job_id=job_id,
        concept_id=concept_id,
        category=LogCategory.content,
        step="link_check",
        duration_ms=round((time.perf_counter() - started) * 1000.0, 1),
        details=LinkCheckDetails(
            concept=context.concept.id,
            checked=len(results),
            offered=len(good),
            dropped=[DroppedLink(url=r.url[:300], error=c.error) for r, c in dropped[:10]],
        ),
    )
    if not good:
        raise SearchError(f"no search result for {query!r} passed the link check", retryable=True)
    return Sources(query, search.provider.name, good)


def choose_checked(
    chosen: ResourceList,
    sources: Sources,
    context: ConceptContext,
    *,
    job_id: uuid.UUID | None,
    concept_id: uuid.UUID | None = None,
) -> CheckedResourceList:
    """The model's choices that are among ``sources``, each with its check."""
    by_url: dict[str, Source] = {}
    for source in sources.offered:
        for url in (source.url, source.check.final_url):
            key = _key(url)
            if key is not None:
                by_url.setdefault(key, source)
    kept: list[CheckedResource] = []
    invented: list[str] = []
    used: set[str] = set()
    for resource in chosen.resources:
        found = by_url.get(str(resource.url))
        if found is None:
            invented.append(str(resource.url)[:300])
            continue
        if found.url in used:
            continue
        used.add(found.url)
        kept.append(
            CheckedResource(
                title=resource.title,
                url=AnyHttpUrl(found.url),
                type=resource.type,
                description=resource.description,
                link=found.check,
            )
        )
    if invented:
        emit(
            f"dropped {len(invented)} resource URL(s) that were not among the search results",
            job_id=job_id,
            concept_id=concept_id,
            category=LogCategory.content,
            step=LOG_STEP,
            details=ResourcesDroppedDetails(concept=context.concept.id, urls=invented[:10]),
        )
    if not kept:
        raise SearchError("the model chose none of the checked search results", retryable=True)
    return CheckedResourceList(
        resources=kept, search_query=sources.query, search_provider=sources.provider
    )
