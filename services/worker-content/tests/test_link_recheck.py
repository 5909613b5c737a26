"""Resources come from the fake web search, checked; the periodic re-check replaces links
that died and marks those it cannot replace (real worker, reconciler, fake search pages)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from celery import Celery
from sqlalchemy import select

from roadmap_core.domain import CheckedResourceList, ContentKind, JobStatus, LinkStatus
from roadmap_db.engine import ProcessDatabase
from roadmap_db.models import Concept, ContentItem, ContentResult
from roadmap_dev.fake_llm import FakeLLM
from roadmap_dev.fake_search import MOUNT_PATH, SHAPES
from roadmap_worker_content.testing import WorkerFactory, make_request, submit_job, wait_for_job

DONE = {JobStatus.completed, JobStatus.partial_failure, JobStatus.failed, JobStatus.cancelled}
ANSWERING = [s for s in SHAPES if s in ("doc", "redirect", "guide", "pdf", "video", "course")]


@pytest.fixture
async def search_control(fake: FakeLLM) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url + MOUNT_PATH, timeout=10) as client:
        (await client.post("/_control/reset")).raise_for_status()
        yield client
        (await client.post("/_control/reset")).raise_for_status()


async def _resources(db: ProcessDatabase, job_id: uuid.UUID) -> dict[int, CheckedResourceList]:
    """The first concept's resources item, every version."""
    async with db.sessions() as s:
        rows = await s.execute(
            select(ContentResult.version, ContentResult.body)
            .join(ContentItem, ContentItem.id == ContentResult.item_id)
            .join(Concept, Concept.id == ContentItem.concept_id)
            .where(Concept.job_id == job_id, ContentItem.kind == ContentKind.resources)
            .order_by(Concept.position, ContentResult.version)
        )
        first: dict[int, CheckedResourceList] = {}
        for version, body in rows:
            if version in first:
                break
            first[version] = CheckedResourceList.model_validate(body)
        return first


async def _wait_for_version(
    db: ProcessDatabase, job_id: uuid.UUID, version: int, within_s: float = 60.0
) -> CheckedResourceList:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        versions = await _resources(db, job_id)
        if version in versions:
            return versions[version]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no version {version} of the resources after {within_s}s")


async def test_dead_links_are_replaced_then_marked(
    workers: WorkerFactory,
    fake: FakeLLM,
    db: ProcessDatabase,
    celery_client: Celery,
    search_control: httpx.AsyncClient,
) -> None:
    worker = workers(
        env={
            "RECONCILE_INTERVAL_S": "0.5",
            "LINK_RECHECK_INTERVAL_S": "1",
            "LINK_RECHECK_BATCH": "100",
        }
    )
    job_id = await submit_job(db, celery_client, make_request(goal="Learn Go for services"))
    job = await wait_for_job(db, job_id, DONE, workers=[worker])
    assert job.status is JobStatus.completed

    first = (await _resources(db, job_id))[1]
    page_base = fake.url + MOUNT_PATH + "/pages/"
    assert first.search_provider == "searxng"
    assert first.resources
    for resource in first.resources:
        # Only pages of the search results, checked, that answered.
        assert str(resource.url).startswith(page_base)
        assert resource.link is not None
        assert resource.link.status is LinkStatus.ok

    # A stored link dies: the re-check searches again and puts an answering page in its place.
    victim = str(first.resources[0].url)
    killed = await search_control.post(
        "/_control/kill", params={"path": victim.removeprefix(fake.url + MOUNT_PATH)}
    )
    killed.raise_for_status()
    second = await _wait_for_version(db, job_id, 2)
    urls = [str(r.url) for r in second.resources]
    assert victim not in urls
    assert len(urls) == len(first.resources) == len(set(urls))
    replacement = second.resources[0]
    assert replacement.link is not None
    assert replacement.link.status is LinkStatus.ok
    assert str(replacement.url).startswith(page_base)
    assert str(replacement.url) not in {str(r.url) for r in first.resources}

    # Every page of the topic dies: nothing can replace them, so they are marked dead.
    topic = victim.removeprefix(page_base).split("/")[0]
    for rank, shape in enumerate(SHAPES, start=1):
        if shape in ANSWERING:
            killed = await search_control.post(
                "/_control/kill", params={"path": f"/pages/{topic}/{rank}-{shape}"}
            )
            killed.raise_for_status()
    third = await _wait_for_version(db, job_id, 3)
    assert [str(r.url) for r in third.resources] == urls
    for resource in third.resources:
        assert resource.link is not None
        assert resource.link.status is LinkStatus.dead
        assert resource.link.http_status == 404


async def test_resources_search_before_they_take_an_llm_slot(
    workers: WorkerFactory,
    fake: FakeLLM,
    db: ProcessDatabase,
    celery_client: Celery,
    search_control: httpx.AsyncClient,
) -> None:
    """A web search and its link checks hold no LLM slot: with 2 slots (LLM_CONCURRENCY 1)
    and slow searches, the resources items of a batch search side by side, not two at a
    time while the slots sit idle."""
    fake.configure(concepts=6)
    configured = await search_control.put("/_control/config", json={"search_latency_ms": 400})
    configured.raise_for_status()
    try:
        worker = workers(concurrency=1, env={"LLM_CONCURRENCY": "1", "CONCEPT_BATCH_SIZE": "6"})
        job_id = await submit_job(db, celery_client, make_request(goal="Learn Go for services"))
        job = await wait_for_job(db, job_id, DONE, workers=[worker])
        searches = (await search_control.get("/_control/state")).json()["searches"]
    finally:
        (await search_control.put("/_control/config", json={})).raise_for_status()
    assert job.status is JobStatus.completed
    assert len(searches) >= 6
    assert max(s["in_flight"] for s in searches) > 2
