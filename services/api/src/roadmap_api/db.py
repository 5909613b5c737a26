"""Request-scoped database session.

``scope="function"`` closes the session (and returns its connection to the pool) as soon as
the path function returns, before the response is sent: a streaming response never holds a
connection. Services that must enqueue after a commit call ``session.commit()`` themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_api.state import AppServices, get_services, services_of


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    services = services_of(request)
    async with services.db.sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        if session.in_transaction():
            await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ServicesDep = Annotated[AppServices, Depends(get_services)]
