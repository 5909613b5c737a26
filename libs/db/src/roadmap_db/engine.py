"""Engine and session factories: one engine per process, named after its service.

``application_name`` makes each service's connections visible in
``pg_stat_activity``, so the connection budget can be checked per service.
Engines are never shared across ``fork()``: prefork children and per-process
event loops build their own with :func:`create_engine` after they start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import NullPool

from roadmap_core.settings import DatabaseSettings


def create_engine(
    settings: DatabaseSettings,
    service: str,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    null_pool: bool = False,
) -> AsyncEngine:
    """Build this process's engine. ``pool_size``/``max_overflow`` override settings."""
    connect_args = {
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
    return _create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size if pool_size is None else pool_size,
        max_overflow=settings.db_max_overflow if max_overflow is None else max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_recycle=settings.db_pool_recycle_s,
        pool_pre_ping=True,
        # Most recently used first: the connections in use stay few and warm (Postgres
        # caches function code and plans, asyncpg prepared statements, per connection), and
        # a first call on a cold one costs ~10 ms.
        pool_use_lifo=True,
        connect_args=connect_args,
    )


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
    ) -> None:
        self.engine = create_engine(
            settings, service, pool_size=pool_size, max_overflow=max_overflow
        )
        self.sessions = session_factory(self.engine)

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(self.sessions)

    async def dispose(self) -> None:
        await self.engine.dispose()
