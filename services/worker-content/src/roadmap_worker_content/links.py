"""The periodic re-check of stored resource links (run by the reconciler's leader).

Each pass takes up to ``LINK_RECHECK_BATCH`` resources items last checked more than
``LINK_RECHECK_INTERVAL_S`` ago (never-checked ones first) and checks every link
again. When some died, the item's query is searched again, new results are
checked, and each dead link is replaced by the next result that answers (its
page title and snippet stand in for the model's title and description); a dead
link with no replacement stays, marked ``dead``. A link that died or was
replaced makes a new version of the item; otherwise (all still answer, or the
dead were already marked) the checks are refreshed in the current version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AnyHttpUrl, ValidationError

from roadmap_core.domain import (
    CheckedResource,
    CheckedResourceList,
    LinkStatus,
    LogCategory,
    LogLevel,
    ResourceType,
)
from roadmap_core.logdetails import LinkRecheckDetails
from roadmap_core.logship import emit
from roadmap_core.pipeline.grounding import ResourceSearch, Source, check_results
from roadmap_core.search import SearchError
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.link_checks import DueItem, due_resource_items, store_recheck
from roadmap_worker_content.settings import ContentWorkerSettings

log = logging.getLogger(__name__)
STEP = "link_recheck"


@dataclass(slots=True)
class RecheckReport:
    items: int = 0
    links: int = 0
    dead: int = 0
    replaced: int = 0


@dataclass(slots=True)
class _Outcome:
    body: CheckedResourceList
    dead: int = 0
    replaced: int = 0
    # Links that were fine at the last check and are not now: worth a new version.
    newly_dead: int = 0
    # The search for replacements: query, provider, result_count or error.
    searched: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.newly_dead > 0 or self.replaced > 0


def _type_for(content_type: str | None) -> ResourceType:
    if content_type and content_type.startswith("video/"):
        return ResourceType.video
    if content_type in ("text/html", "application/xhtml+xml"):
        return ResourceType.article
    return ResourceType.other


def _was_alive(resource: CheckedResource) -> bool:
    return resource.link is None or resource.link.status is LinkStatus.ok


def _replacement(source: Source) -> CheckedResource:
    return CheckedResource(
        title=(source.page_title or source.title)[:200],
        url=AnyHttpUrl(source.url),
        type=_type_for(source.content_type),
        description=source.snippet[:4000],
        link=source.check,
    )


async def _recheck(search: ResourceSearch, due: DueItem) -> _Outcome:
    body = CheckedResourceList.model_validate(due.body)
    checks = await search.checker.check_many([str(r.url) for r in body.resources])
    resources = [
        r.model_copy(update={"link": check})
        for r, check in zip(body.resources, checks, strict=True)
    ]
    dead = [i for i, check in enumerate(checks) if check.status is not LinkStatus.ok]
    outcome = _Outcome(
        body.model_copy(update={"resources": resources}),
        dead=len(dead),
        newly_dead=sum(1 for i in dead if _was_alive(body.resources[i])),
    )
    if not dead:
        return outcome
    query = body.search_query or due.concept_title
    try:
        results = await search.provider.search(query, count=search.results)
    except SearchError as exc:
        outcome.searched = {"query": query, "provider": search.provider.name, "error": str(exc)}
        return outcome
    present = {str(r.url) for r in resources}
    fresh = [r for r in results if str(AnyHttpUrl(r.url)) not in present]
    good, _ = await check_results(search.checker, fresh, offer=len(dead))
    outcome.searched = {
        "query": query,
        "provider": search.provider.name,
        "result_count": len(results),
    }
    for index, source in zip(dead, good, strict=False):
        resources[index] = _replacement(source)
        outcome.replaced += 1
    outcome.body = body.model_copy(
        update={
            "resources": resources,
            "search_query": query,
            "search_provider": search.provider.name,
        }
    )
    return outcome


async def recheck_links_once(
    db: ProcessDatabase, search: ResourceSearch, settings: ContentWorkerSettings
) -> RecheckReport:
    report = RecheckReport()
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.link_recheck_interval_s)
    async with db.transaction() as session:
        due = await due_resource_items(
            session, checked_before=cutoff, limit=settings.link_recheck_batch
        )
    for item in due:
        try:
            outcome = await _recheck(search, item)
        except ValidationError:
            log.warning("resources item %s has a body that is not a resource list", item.item_id)
            continue
        async with db.transaction() as session:
            version = await store_recheck(
                session,
                item,
                outcome.body.model_dump(mode="json"),
                new_version=outcome.changed,
            )
        if version is None:
            continue
        report.items += 1
        report.links += len(outcome.body.resources)
        report.dead += outcome.dead
        report.replaced += outcome.replaced
        if outcome.changed:
            emit(
                f"re-check: {outcome.dead} dead link(s), {outcome.replaced} replaced",
                job_id=item.job_id,
                concept_id=item.concept_id,
                level=LogLevel.warning if outcome.replaced < outcome.dead else LogLevel.info,
                category=LogCategory.content,
                step=STEP,
                details=LinkRecheckDetails(
                    item_id=item.item_id,
                    version=version,
                    dead=outcome.dead,
                    replaced=outcome.replaced,
                    **outcome.searched,
                ),
            )
    if report.items:
        log.info("link re-check: %s", report)
    return report
