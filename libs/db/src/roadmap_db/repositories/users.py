"""Users: registration (case-insensitive unique email) and lookups."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_db.models import ApiKey, User


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


async def lock_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The user, its row locked for this transaction (serialises changes per user)."""
    stmt = select(User).where(User.id == user_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def change_password(session: AsyncSession, user_id: uuid.UUID, password_hash: str) -> int:
    """Set a new password hash and revoke every token issued before: the token version
    moves on (access tokens) and every API key is revoked. Returns the new version."""
    version = (
        await session.execute(
            update(User)
            .where(User.id == user_id)
            .values(password_hash=password_hash, token_version=User.token_version + 1)
            .returning(User.token_version)
        )
    ).scalar_one()
    await session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return int(version)


async def update_password_hash(
    session: AsyncSession, user_id: uuid.UUID, password_hash: str
) -> None:
    user = await session.get(User, user_id)
    if user is not None:
        user.password_hash = password_hash
