"""Generating the content of a batch of concepts: every claimed item concurrently.

Each item (one concept, one kind) is one LLM call, stored the moment it
returns: one transaction records the call's usage on the job, stores a new
result version and marks the item ``succeeded`` (guarded by the claim and the
job's status), then an ``item`` progress event goes out. Items answered while
another save of the batch runs are stored together in the next (:class:`_Saver`).

Attempts are counted when they start (``begin_attempt``, which also checks that
the job is still ``generating``: a cancelled job stops spending there), not when
items are claimed, so items that were claimed but never started are not charged
when their process dies; only the items that line up first, whose calls start the
moment the claim commits, have theirs counted in the claim's transaction. An item
that already used attempts and has one left runs alone before the others: a poison
item that kills its process costs the items around it nothing.

A retryable error is noted and the item tried again after a backoff, under the
same claim; a permanent error, or the last attempt, marks it ``failed``. Items
whose next attempt would not fit in the task's time limit are handed back
(``queued``) and their concepts returned to the caller to send again. The save
that stores the job's last items finalises it in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_core.domain import ContentKind, ItemStatus, JobStatus, LogLevel, RoadmapRequest
from roadmap_core.llm.errors import LLMError
from roadmap_core.llm.usage import UsageTotals, usage_scope
from roadmap_core.logdetails import ItemFailedDetails
from roadmap_core.logship import emit
from roadmap_core.pipeline import ConceptContext, Content, concept_contexts, generate_content
from roadmap_core.pipeline.grounding import Sources, find_sources
from roadmap_core.progress import ItemEvent, Progress
from roadmap_core.search import SearchError
from roadmap_db.models import Concept, ContentItem
from roadmap_db.repositories import item_results as results
from roadmap_db.repositories.claims import claim_items, fail_exhausted_items
from roadmap_db.repositories.frameworks import load_framework_and_concepts
from roadmap_db.repositories.job_lifecycle import Finalized, get_job_for_claims
from roadmap_db.repositories.llm_usage import record_llm_calls
from roadmap_worker_content.finalize import all_done, announce, finalize_and_announce, finalize_in
from roadmap_worker_content.leases import renewing_lease
from roadmap_worker_content.observers import StepLogger
from roadmap_worker_content.planning import backoff_s
from roadmap_worker_content.runtime import Runtime, line_up
from roadmap_worker_content.usage import UsageLedger, collect_usage

log = logging.getLogger(__name__)


@dataclass(slots=True)
class GenerationOutcome:
    succeeded: int = 0
    failed: int = 0
    # Concepts with items handed back for lack of time: the caller sends them again.
    resend: list[uuid.UUID] = field(default_factory=list)
    finalized: JobStatus | None = None


@dataclass(frozen=True, slots=True)
class _Batch:
    rt: Runtime
    job_id: uuid.UUID
    token: str
    request: RoadmapRequest
    deadline: float
    concepts: dict[uuid.UUID, Concept]
    contexts: dict[str, ConceptContext]
    # Attempts counted at the claim (item id → attempt number), each taken by its first call.
    begun: dict[uuid.UUID, int]
    saver: _Saver = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "saver", _Saver(self))


async def generate(
    rt: Runtime,
    job_id: uuid.UUID,
    concept_ids: list[uuid.UUID],
    token: str,
    *,
    deadline: float,
) -> GenerationOutcome:
    """Generate every claimable item of ``concept_ids``; ``deadline`` is ``time.monotonic()``
    after which no new LLM call may start."""
    settings = rt.settings
    outcome = GenerationOutcome()
    async with rt.db.transaction() as session:
        # The job row before any of its items: the order the API's cancel locks them in.
        job = await get_job_for_claims(session, job_id)
        if job is None or job.status is not JobStatus.generating:
            return outcome
        exhausted = await fail_exhausted_items(
            session,
            job_id,
            max_attempts=settings.llm_task_max_attempts,
            lease=settings.item_lease,
            concept_ids=concept_ids,
            token=token,
            max_claims=settings.item_max_claims,
        )
        items = await claim_items(
            session,
            job_id,
            concept_ids,
            max_attempts=settings.llm_task_max_attempts,
            lease=settings.item_lease,
            token=token,
            count_attempt=False,
            max_claims=settings.item_max_claims,
        )
        framework, concept_rows = await load_framework_and_concepts(session, job_id)
        concepts = {c.id: c for c in concept_rows}
        # An item that already used attempts and has one left runs alone, before the
        # others: if it is what kills the process, no other item loses an attempt to it.
        last_chance = sorted(
            (i for i in items if 0 < i.attempts >= settings.llm_task_max_attempts - 1),
            key=lambda i: -i.attempts,
        )
        # Resources line up last: their web search and link checks then run while the
        # first tutorial and quiz calls are with the model.
        rest = sorted(
            (i for i in items if i not in last_chance),
            key=lambda i: i.kind is ContentKind.resources,
        )
        # The items that line up first start their calls the moment this commits: their
        # attempts are counted here, in one statement, rather than by as many round trips
        # at once just when the first calls should go out.
        begun = (
            await results.begin_attempts(
                session,
                job_id,
                [i.id for i in rest[: line_up(settings)] if i.kind is not ContentKind.resources],
                token,
                max_attempts=settings.llm_task_max_attempts,
            )
            if framework is not None and not last_chance
            else {}
        )
    for item in exhausted:
        outcome.failed += 1
        await _item_event(rt, job_id, item, concepts, ItemStatus.failed, error=item.error)
    if items and framework is not None:
        batch = _Batch(
            rt,
            job_id,
            token,
            RoadmapRequest.model_validate(job.request),
            deadline,
            concepts,
            concept_contexts(framework),
            begun,
        )
        done: dict[uuid.UUID, ItemStatus | None] = {}
        async with renewing_lease(rt.db, token, interval_s=settings.lease_renew_s):
            for item in last_chance:
                done[item.id] = await _run_item(batch, item)
            statuses = await asyncio.gather(*(_run_item(batch, item) for item in rest))
            done.update(zip((i.id for i in rest), statuses, strict=True))
        for item in items:
            status = done[item.id]
            if status is ItemStatus.succeeded:
                outcome.succeeded += 1
            elif status is ItemStatus.failed:
                outcome.failed += 1
            elif status is ItemStatus.queued:
                outcome.resend.append(item.concept_id)
    outcome.resend = sorted(set(outcome.resend))
    if exhausted or items:
        finalized = await finalize_and_announce(rt.db, rt.progress, job_id)
        outcome.finalized = finalized.status if finalized else None
    return outcome


async def _run_item(batch: _Batch, item: ContentItem) -> ItemStatus | None:
    """Generate one item until it is stored, fails, or is handed back; returns its status
    (``None``: the job went away or another worker holds the item now)."""
    with collect_usage() as ledger:
        return await _attempts(batch, item, ledger)


async def _attempts(batch: _Batch, item: ContentItem, ledger: UsageLedger) -> ItemStatus | None:
    rt, settings = batch.rt, batch.rt.settings
    max_attempts = settings.llm_task_max_attempts
    concept = batch.concepts[item.concept_id]
    context = batch.contexts.get(concept.key)
    if context is None:
        return await _fail(batch, item, ledger, f"concept {concept.key} is not in the framework")
    observer = StepLogger(batch.job_id, item.concept_id)
    error = item.error or "attempts exhausted"
    while True:
        call = await _call(batch, item, context, observer)
        if call.attempt is None:
            if call.attempts_left is False:
                return await _fail(batch, item, ledger, f"{error} (after {max_attempts} attempts)")
            await _record_usage(batch, ledger)
            return None
        attempt, exc = call.attempt, call.error
        if exc is not None:
            error = (
                str(exc)
                if isinstance(exc, LLMError | SearchError)
                else f"{type(exc).__name__}: {exc}"
            )
            retryable = exc.retryable if isinstance(exc, LLMError | SearchError) else True
            if not retryable:
                return await _fail(batch, item, ledger, error)
            wait = backoff_s(
                attempt,
                exc.retry_after_s if isinstance(exc, LLMError) else None,
                settings.item_lease_s,
            )
            async with rt.db.transaction() as session:
                await record_llm_calls(session, ledger.take())
                if time.monotonic() + wait + rt.llm.max_call_duration_s > batch.deadline:
                    released = await results.release_item(
                        session, item.id, batch.token, error=error
                    )
                    return ItemStatus.queued if released else None
                await results.record_item_error(session, item.id, batch.token, error=error)
            if attempt >= max_attempts:
                return await _fail(batch, item, ledger, f"{error} (after {attempt} attempts)")
            await asyncio.sleep(wait)
            continue
        assert call.value is not None
        assert call.usage is not None
        value, usage = call.value, call.usage
        save = results.ItemSave(
            item.id,
            value.model_dump(mode="json"),
            item.instructions,
            results.ResultUsage(
                model=settings.content_model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost_usd=usage.cost_usd,
            ),
            ledger.take(),
        )
        version = await batch.saver.save(item, save)
        return None if version is None else ItemStatus.succeeded


_Entry = tuple[ContentItem, results.ItemSave, asyncio.Future[int | None]]


@dataclass(slots=True)
class _Committed:
    versions: dict[uuid.UUID, int | None]
    saved: list[tuple[ContentItem, int]]
    progress: dict[str, int] | None
    final: tuple[Finalized, dict[str, int]] | None


class _Saver:
    """Stores the answered items of a batch, those answered together in one transaction.

    Answers arrive in bursts (the calls of one wave go out together), and every save
    locks the job row, so saved one by one they queue on that lock, the slowest of
    them far behind its answer. Here, while one transaction runs, the answers that
    arrive wait and go into the next: one lock per group, a handful of statements
    whatever its size. Whichever waiter takes the lock next stores everything queued
    by then; every item still gets its own ``item`` event, in order, its progress counted
    as if the group had been saved one item at a time. A group whose transaction fails
    is stored again one item at a time, so that only an item at fault fails.
    """

    def __init__(self, batch: _Batch) -> None:
        self._batch = batch
        self._queue: list[_Entry] = []
        self._lock = asyncio.Lock()

    async def save(self, item: ContentItem, save: results.ItemSave) -> int | None:
        """The item's new version once it is stored and announced; None if it was not
        stored (the job went away or the item is no longer ours)."""
        stored: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, save, stored))
        try:
            async with self._lock:
                if not stored.done():
                    group, self._queue = self._queue, []
                    await self._store(group)
        except asyncio.CancelledError:
            # If not stored yet, it still is by whoever stores next (the call was paid
            # for); either way nobody reads the outcome.
            if stored.done() and not stored.cancelled():
                stored.exception()  # read: no "never retrieved" warning
            stored.cancel()
            raise
        return await stored

    async def _store(self, group: list[_Entry]) -> None:
        """Store ``group`` and settle each entry's future with its version or its error
        (ordinary errors reach the waiters through their futures, not from here)."""
        try:
            committed = await self._commit(group)
        except asyncio.CancelledError:
            _settle(group, RuntimeError("the save was cancelled"))
            raise
        except Exception as exc:
            if len(group) == 1:
                _settle(group, exc)
                return
            # Nothing of the group was written: store each alone, once.
            log.warning(
                "saving %d items together failed (%s); saving them one by one",
                len(group),
                type(exc).__name__,
            )
            for entry in group:
                await self._store([entry])
            return
        try:
            await self._announce(committed)
        except BaseException as exc:
            _settle(group, exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            raise
        for item, _, stored in group:
            if not stored.done():
                stored.set_result(committed.versions[item.id])

    async def _commit(self, group: list[_Entry]) -> _Committed:
        batch = self._batch
        async with batch.rt.db.transaction() as session:
            versions = await results.save_item_results(
                session, batch.job_id, batch.token, [save for _, save, _ in group]
            )
            saved = [
                (item, version)
                for item, _, _ in group
                if (version := versions[item.id]) is not None
            ]
            progress = await results.item_progress(session, batch.job_id) if saved else None
            # The job row stays locked until this commits, so the counts include every
            # other save committed before: the last group finalises, here, once.
            final = (
                await finalize_in(session, batch.job_id)
                if progress and all_done(progress)
                else None
            )
        return _Committed(versions, saved, progress, final)

    async def _announce(self, committed: _Committed) -> None:
        batch = self._batch
        if committed.saved:
            assert committed.progress is not None
            later = len(committed.saved) - 1
            await batch.rt.progress.publish_all(
                batch.job_id,
                [
                    _item_event_data(
                        item,
                        batch.concepts,
                        ItemStatus.succeeded,
                        version=version,
                        progress=_progress_before(committed.progress, later - i),
                    )
                    for i, (item, version) in enumerate(committed.saved)
                ],
            )
        if committed.final is not None:
            await announce(batch.rt.progress, batch.job_id, *committed.final)


def _settle(group: list[_Entry], error: Exception) -> None:
    for _, _, stored in group:
        if not stored.done():
            stored.set_exception(error)


def _progress_before(progress: dict[str, int], later: int) -> dict[str, int]:
    """The counts as they were with the ``later`` saves of a group not yet committed."""
    if not later:
        return progress
    succeeded, running = ItemStatus.succeeded.value, ItemStatus.running.value
    return {**progress, succeeded: progress[succeeded] - later, running: progress[running] + later}


@dataclass(slots=True)
class _Call:
    """One attempt: not started (``attempt`` None), failed (``error``) or answered."""

    attempt: int | None
    attempts_left: bool | None = None
    value: Content | None = None
    usage: UsageTotals | None = None
    error: Exception | None = None


async def _call(
    batch: _Batch, item: ContentItem, context: ConceptContext, observer: StepLogger
) -> _Call:
    # Resources search and check their links first, before they wait for an LLM slot: a
    # slot held through a web search and its link checks sits idle while other items
    # wait for it. The attempt's job-status check still comes right before the LLM call
    # (a cancel stops spending there), and a failed search still costs the attempt it
    # would have been part of.
    sources: Sources | None = None
    search_error: Exception | None = None
    if item.kind is ContentKind.resources:
        try:
            sources = await find_sources(
                batch.rt.search, context, job_id=batch.job_id, concept_id=item.concept_id
            )
        except Exception as exc:
            search_error = exc
    # Counted once the item is among the next calls (runtime.slots), in the statement
    # that also checks the job is still generating and the item still ours: a cancel
    # stops spending here, and items further back are not charged if we die.
    async with batch.rt.slots:
        begun = batch.begun.pop(item.id, None)
        attempt, left = (begun, None) if begun is not None else await _begin_attempt(batch, item)
        if attempt is None:
            return _Call(None, attempts_left=left)
        if search_error is not None:
            return _Call(attempt, error=search_error)
        try:
            with usage_scope() as usage:
                value = await generate_content(
                    batch.rt.llm,
                    item.kind,
                    batch.request,
                    context,
                    instructions=item.instructions,
                    job_id=batch.job_id,
                    item_id=item.id,
                    observer=observer,
                    search=batch.rt.search,
                    concept_id=item.concept_id,
                    sources=sources,
                )
        except Exception as exc:
            return _Call(attempt, error=exc)
    return _Call(attempt, value=value, usage=usage)


async def _begin_attempt(batch: _Batch, item: ContentItem) -> tuple[int | None, bool | None]:
    """(attempt number, None) or, when none may start, (None, attempts left?)."""
    max_attempts = batch.rt.settings.llm_task_max_attempts
    # One statement, no transaction around it: it runs before every call.
    async with batch.rt.db.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        async with AsyncSession(bind=autocommit) as session:
            attempt = await results.begin_attempt(
                session, batch.job_id, item.id, batch.token, max_attempts=max_attempts
            )
            if attempt is not None:
                return attempt, None
            return None, await results.attempts_left(
                session, item.id, batch.token, max_attempts=max_attempts
            )


async def _record_usage(batch: _Batch, ledger: UsageLedger) -> None:
    calls = ledger.take()
    if calls:
        async with batch.rt.db.transaction() as session:
            await record_llm_calls(session, calls)


async def _fail(
    batch: _Batch, item: ContentItem, ledger: UsageLedger, error: str
) -> ItemStatus | None:
    async with batch.rt.db.transaction() as session:
        await record_llm_calls(session, ledger.take())
        failed = await results.fail_item(session, item.id, batch.token, error=error)
        progress = await results.item_progress(session, batch.job_id) if failed else None
    if not failed:
        return None
    emit(
        f"{item.kind.value} failed: {error}",
        job_id=batch.job_id,
        concept_id=item.concept_id,
        level=LogLevel.error,
        step="content_generation",
        details=ItemFailedDetails(item_id=item.id, content_kind=item.kind),
    )
    await _item_event(
        batch.rt,
        batch.job_id,
        item,
        batch.concepts,
        ItemStatus.failed,
        error=error,
        progress=progress,
    )
    return ItemStatus.failed


async def _item_event(
    rt: Runtime,
    job_id: uuid.UUID,
    item: ContentItem,
    concepts: dict[uuid.UUID, Concept],
    status: ItemStatus,
    *,
    version: int | None = None,
    error: str | None = None,
    progress: dict[str, int] | None = None,
) -> None:
    if progress is None:
        async with rt.db.sessions() as session:
            progress = await results.item_progress(session, job_id)
    event = _item_event_data(
        item, concepts, status, version=version, error=error, progress=progress
    )
    await rt.progress.publish(job_id, event)


def _item_event_data(
    item: ContentItem,
    concepts: dict[uuid.UUID, Concept],
    status: ItemStatus,
    *,
    progress: dict[str, int],
    version: int | None = None,
    error: str | None = None,
) -> ItemEvent:
    concept = concepts.get(item.concept_id)
    return ItemEvent(
        item_id=item.id,
        concept_id=item.concept_id,
        concept_key=concept.key if concept else None,
        kind=item.kind,
        status=status,
        version=version,
        error=error,
        progress=Progress.from_counts(progress),
    )
