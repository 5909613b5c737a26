"""Users: registration (case-insensitive unique email) and lookups."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_db.models import User


async def create_user(
    session: AsyncSession, *, email: str, password_hash: str, display_name: str | None
) -> User | None:
    """Insert a user; ``None`` when the email (compared case-insensitively) is taken."""
    stmt = (
        insert(User)
        .values(email=email, password_hash=password_hash, display_name=display_name)
        .on_conflict_do_nothing(index_elements=[text("lower(email)")])
        .returning(User)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    stmt = select(User).where(func.lower(User.email) == email.strip().lower())
    return (await session.execute(stmt)).scalar_one_or_none()


async def update_password_hash(
    session: AsyncSession, user_id: uuid.UUID, password_hash: str
) -> None:
    user = await session.get(User, user_id)
    if user is not None:
        user.password_hash = password_hash
