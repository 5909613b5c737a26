"""Engine and session factories: one engine per process, named after its service.

``application_name`` makes each service's connections visible in
``pg_stat_activity``, so the connection budget can be checked per service.
Engines are never shared across ``fork()``: prefork children and per-process
event loops build their own with :func:`create_engine` after they start.

A worker's engine may ride out a PostgreSQL restart (``outage_window_s``): opening a
connection is retried with backoff until the server answers or the window has passed.
Every checkout checks its connection first (:mod:`roadmap_db.liveness`, one round trip), so
after the restart each finds its old connection dead and opens a new one that way, so a step that begins during the outage waits for the server
instead of failing. (The API's engine does not: it answers 503 at once.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import NullPool

from roadmap_core.outages import ride_out
from roadmap_core.settings import DatabaseSettings, plain_postgres_url
from roadmap_db.liveness import check_on_checkout
from roadmap_db.outages import is_connect_outage


def create_engine(
    settings: DatabaseSettings,
    service: str,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    null_pool: bool = False,
    outage_window_s: float = 0.0,
) -> AsyncEngine:
    """Build this process's engine. ``pool_size``/``max_overflow`` override settings;
    ``outage_window_s`` > 0 retries opening a connection for that long."""
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout_s,
        "server_settings": {
            "application_name": service[:63],
            "statement_timeout": str(settings.db_statement_timeout_ms),
        },
    }
    if null_pool:
        return _create_async_engine(
            settings.database_url, poolclass=NullPool, connect_args=connect_args
        )
    if outage_window_s > 0:
        # The creator replaces the dialect's connect, URL included: it gets everything.
        creator = _riding_out(settings.database_url, connect_args, outage_window_s)
        engine = _create_async_engine(
            settings.database_url,
            async_creator=creator,
            **_pool_options(settings, pool_size, max_overflow),
        )
    else:
        engine = _create_async_engine(
            settings.database_url,
            connect_args=connect_args,
            **_pool_options(settings, pool_size, max_overflow),
        )
    check_on_checkout(engine)
    return engine


def _pool_options(
    settings: DatabaseSettings, pool_size: int | None, max_overflow: int | None
) -> dict[str, Any]:
    return {
        "pool_size": settings.db_pool_size if pool_size is None else pool_size,
        "max_overflow": settings.db_max_overflow if max_overflow is None else max_overflow,
        "pool_timeout": settings.db_pool_timeout_s,
        "pool_recycle": settings.db_pool_recycle_s,
        # Not SQLAlchemy's pre-ping (three round trips on asyncpg): liveness.py checks.
        "pool_pre_ping": False,
        # Most recently used first: the connections in use stay few and warm (Postgres
        # caches function code and plans, asyncpg prepared statements, per connection), and
        # a first call on a cold one costs ~10 ms.
        "pool_use_lifo": True,
    }


def _riding_out(
    database_url: str, connect_args: dict[str, Any], window_s: float
) -> Callable[[], Awaitable[asyncpg.Connection]]:
    dsn = plain_postgres_url(database_url)

    async def connect() -> asyncpg.Connection:
        return await ride_out(
            lambda: asyncpg.connect(dsn, **connect_args),
            window_s=window_s,
            is_outage=is_connect_outage,
            what="PostgreSQL",
        )

    return connect


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: commit on success, roll back on error."""
    async with sessions() as session, session.begin():
        yield session


class ProcessDatabase:
    """The engine + session factory of one process (or one prefork child).

    Create it where it will be used: in the API's lifespan, or in a worker
    process after fork on the loop that will run its queries.
    """

    def __init__(
        self,
        settings: DatabaseSettings,
        service: str,
        *,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        outage_window_s: float = 0.0,
    ) -> None:
        self.engine = create_engine(
            settings,
            service,
            pool_size=pool_size,
            max_overflow=max_overflow,
            outage_window_s=outage_window_s,
        )
        self.sessions = session_factory(self.engine)

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(self.sessions)

    async def dispose(self) -> None:
        await self.engine.dispose()
