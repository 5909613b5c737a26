"""Read what the services wrote, straight from PostgreSQL (the source of truth)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import asyncpg

from roadmap_core.settings import plain_postgres_url

TERMINAL = frozenset({"completed", "partial_failure", "failed", "cancelled"})


class Db:
    """A small asyncpg pool onto one database; reconnects after a server restart."""

    def __init__(self, database_url: str) -> None:
        self.url = plain_postgres_url(database_url)
        self._pool: asyncpg.Pool | None = None

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=0, max_size=2, timeout=5, command_timeout=10
            )
        return self._pool

    async def fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        pool = await self._get_pool()
        return [dict(r) for r in await pool.fetch(query, *args)]

    async def fetchval(self, query: str, *args: Any) -> Any:
        pool = await self._get_pool()
        return await pool.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        pool = await self._get_pool()
        return str(await pool.execute(query, *args))

    async def reset_pool(self) -> None:
        """Drop pooled connections (after the server was restarted under them)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # -- the rows tests look at ---------------------------------------------------------

    async def job(self, job_id: uuid.UUID | str) -> dict[str, Any]:
        rows = await self.fetch("SELECT * FROM roadmap_jobs WHERE id = $1", uuid.UUID(str(job_id)))
        assert rows, f"no roadmap_jobs row {job_id}"
        return rows[0]

    async def job_status(self, job_id: uuid.UUID | str) -> str:
        return str(
            await self.fetchval(
                "SELECT status::text FROM roadmap_jobs WHERE id = $1", uuid.UUID(str(job_id))
            )
        )

    async def items(self, job_id: uuid.UUID | str) -> list[dict[str, Any]]:
        """Content items with their concept key and the number of stored result versions."""
        return await self.fetch(
            """
            SELECT i.id, i.concept_id, j.request->>'goal' AS goal, c.key AS concept_key, c.title AS concept_title,
                   i.kind::text AS kind, i.status::text AS status, i.attempts, i.version,
                   i.error,
                   (SELECT count(*) FROM content_results r WHERE r.item_id = i.id) AS results,
                   (SELECT max(r.created_at) FROM content_results r WHERE r.item_id = i.id)
                       AS saved_at
            FROM content_items i
            JOIN concepts c ON c.id = i.concept_id
            JOIN roadmap_jobs j ON j.id = i.job_id
            WHERE i.job_id = $1
            ORDER BY c.position, i.kind
            """,
            uuid.UUID(str(job_id)),
        )

    async def item_statuses(self, job_id: uuid.UUID | str) -> dict[str, int]:
        rows = await self.fetch(
            "SELECT status::text AS s, count(*) AS n FROM content_items WHERE job_id = $1"
            " GROUP BY status",
            uuid.UUID(str(job_id)),
        )
        return {r["s"]: int(r["n"]) for r in rows}

    async def describe(self, job_ids: Collection[uuid.UUID | str]) -> str:
        """Job rows and item counts, for timeout messages."""
        lines = []
        for job_id in job_ids:
            try:
                job = await self.job(job_id)
                counts = await self.item_statuses(job_id)
            except Exception as exc:
                lines.append(f"{job_id}: unreadable ({type(exc).__name__}: {exc})")
                continue
            lines.append(
                f"{job_id}: status={job['status']} step={job['current_step']}"
                f" attempts={job['attempts']} error={job['error']!r} items={counts}"
            )
        return "\n".join(lines)

    async def wait_jobs(
        self,
        job_ids: Collection[uuid.UUID | str],
        statuses: Collection[str] = TERMINAL,
        *,
        within: float,
        context: Callable[[], str] | None = None,
    ) -> dict[str, str]:
        """Until every job is in ``statuses``; returns job id → status. Bounded by ``timeout``."""
        deadline = time.monotonic() + within
        found: dict[str, str] = {}
        while True:
            try:
                found = {str(j): await self.job_status(j) for j in job_ids}
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self.reset_pool()
                found = {}
            if found and all(s in statuses for s in found.values()):
                return found
            if time.monotonic() > deadline:
                extra = context() if context else ""
                raise AssertionError(
                    f"jobs not in {sorted(statuses)} after {within:.0f}s:\n"
                    f"{await self.describe(job_ids)}\n{extra}"
                )
            await asyncio.sleep(0.2)


async def wait_for(
    check: Callable[[], Awaitable[bool]], *, within: float, what: str, poll: float = 0.1
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(poll)
