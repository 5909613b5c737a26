"""The worker's usage sink: every LLM response with usage becomes an ``llm_calls`` row
added to its job's totals, and an execution-log event.

Calls made for a content item are collected (:func:`collect_usage`) and written
in the transaction that stores the item's outcome, so one item costs one
transaction; other calls (planning) are written at once, each in its own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

from roadmap_core.domain import LogCategory, LogLevel
from roadmap_core.llm.usage import OUTCOME_OK, LLMCallRecord
from roadmap_core.logdetails import LlmCallDetails
from roadmap_core.logship import emit
from roadmap_db.engine import ProcessDatabase
from roadmap_db.repositories.llm_usage import CallUsage, record_llm_calls

log = logging.getLogger(__name__)


class UsageLedger:
    """Calls of one item not written yet."""

    def __init__(self) -> None:
        self._calls: list[CallUsage] = []

    def add(self, call: CallUsage) -> None:
        self._calls.append(call)

    def take(self) -> list[CallUsage]:
        """The calls collected so far; the caller writes them in its transaction."""
        calls, self._calls = self._calls, []
        return calls


_ledger: ContextVar[UsageLedger | None] = ContextVar("roadmap_worker_usage_ledger", default=None)


@contextlib.contextmanager
def collect_usage() -> Iterator[UsageLedger]:
    """Calls made in this context (for a job) go to the ledger instead of the database."""
    ledger = UsageLedger()
    token = _ledger.set(ledger)
    try:
        yield ledger
    finally:
        _ledger.reset(token)


def call_usage(call: LLMCallRecord) -> CallUsage | None:
    if call.job_id is None:
        return None
    return CallUsage(
        job_id=call.job_id,
        item_id=call.item_id,
        step=call.step,
        model=call.model,
        prompt_tokens=call.prompt_tokens,
        completion_tokens=call.completion_tokens,
        cost_usd=call.cost_usd,
        duration_ms=call.duration_ms,
    )


class DatabaseUsageSink:
    def __init__(self, db: ProcessDatabase) -> None:
        self._db = db

    async def record(self, call: LLMCallRecord) -> None:
        emit(
            f"LLM call for {call.step}: {call.outcome}",
            job_id=call.job_id,
            level=LogLevel.info if call.outcome == OUTCOME_OK else LogLevel.warning,
            category=LogCategory.llm,
            step=call.step,
            details=LlmCallDetails(
                model=call.model,
                prompt_tokens=call.prompt_tokens,
                completion_tokens=call.completion_tokens,
                cost_usd=str(call.cost_usd),
                outcome=call.outcome,
                item_id=call.item_id,
                request_id=call.request_id,
            ),
            duration_ms=call.duration_ms,
        )
        usage = call_usage(call)
        if usage is None:
            return
        ledger = _ledger.get()
        if ledger is not None:
            ledger.add(usage)
            return
        async with self._db.transaction() as session:
            await record_llm_calls(session, [usage])
