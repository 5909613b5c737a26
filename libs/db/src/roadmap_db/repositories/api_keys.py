"""API keys: stored as SHA-256 of the full key, looked up by that hash, revoked by timestamp."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_db.models import ApiKey, User

# ``last_used_at`` is a hint for the owner, not an audit trail: write it at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


async def count_active_keys(session: AsyncSession, user_id: uuid.UUID) -> int:
    stmt = select(func.count()).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
    return int((await session.execute(stmt)).scalar_one())


async def create_api_key(
    session: AsyncSession, *, user_id: uuid.UUID, name: str, prefix: str, key_hash: str
) -> ApiKey:
    """Insert a key. Callers enforcing a cap lock the user first (``users.lock_user``) and
    count (``count_active_keys``) in the same transaction, so concurrent creates queue."""
    key = ApiKey(user_id=user_id, name=name, prefix=prefix, key_hash=key_hash)
    session.add(key)
    await session.flush()
    await session.refresh(key, ["created_at"])
    return key


async def list_api_keys(session: AsyncSession, user_id: uuid.UUID) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at, ApiKey.id)
    return list((await session.execute(stmt)).scalars())


async def revoke_api_key(session: AsyncSession, *, user_id: uuid.UUID, key_id: uuid.UUID) -> bool:
    """Revoke (idempotently) a key of this user; ``False`` when the user has no such key."""
    stmt = (
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.user_id == user_id)
        .values(revoked_at=func.coalesce(ApiKey.revoked_at, func.now()))
        .returning(ApiKey.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def find_active_key(session: AsyncSession, key_hash: str) -> tuple[ApiKey, User] | None:
    """The unrevoked key with this hash and its active owner, if any."""
    stmt = (
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None), User.is_active)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def touch_api_key(session: AsyncSession, key_id: uuid.UUID) -> None:
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(
                ApiKey.last_used_at.is_(None),
                ApiKey.last_used_at < func.now() - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=func.now())
    )
