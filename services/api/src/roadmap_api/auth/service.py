"""Registration, login, password changes and API keys."""

from __future__ import annotations

import logging
import secrets
import uuid

import anyio
import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from roadmap_api.auth import ratelimit
from roadmap_api.auth.policy import password_problems
from roadmap_api.auth.schemas import PasswordChange, RegisterRequest
from roadmap_api.auth.tokens import IssuedToken, issue_access_token, new_api_key
from roadmap_api.errors import Conflict, InvalidInput, NotFound, Unauthorized
from roadmap_api.state import AppServices
from roadmap_core.passwords import hash_password, verify_and_update
from roadmap_db.models import ApiKey, User
from roadmap_db.repositories import api_keys, users

log = logging.getLogger("roadmap_api.auth")

_dummy_hash: str | None = None


async def _hash(services: AppServices, password: str) -> str:
    return await anyio.to_thread.run_sync(
        hash_password, password, limiter=services.password_limiter
    )


async def _verify(services: AppServices, password: str, hashed: str) -> tuple[bool, str | None]:
    return await anyio.to_thread.run_sync(
        verify_and_update, password, hashed, limiter=services.password_limiter
    )


async def _dummy(services: AppServices) -> str:
    # Unknown emails are verified against this, so timing does not reveal who has an account.
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await _hash(services, secrets.token_urlsafe(24))
    return _dummy_hash


async def register(
    session: AsyncSession, services: AppServices, body: RegisterRequest, client_ip: str
) -> User:
    settings = services.settings
    await ratelimit.enforce(
        services.redis,
        ratelimit.limit_key("register-ip", client_ip),
        limit=settings.register_ip_max,
        window_s=settings.register_window_s,
        what="registrations from this address",
    )
    password_hash = await _hash(services, body.password.get_secret_value())
    user = await users.create_user(
        session,
        email=body.email.strip().lower(),
        password_hash=password_hash,
        display_name=body.display_name,
    )
    if user is None:
        raise Conflict("An account with this email already exists.")
    await session.commit()
    return user


async def login(
    session: AsyncSession, services: AppServices, *, email: str, password: str, client_ip: str
) -> IssuedToken:
    """Check credentials under two throttles: attempts per address, and unsuccessful
    attempts per (email, address).

    Both count the attempt *before* the password is verified, in one atomic Redis step,
    so a burst of concurrent guesses gets at most ``LOGIN_MAX_FAILURES`` of them checked
    per window; the rest are refused unchecked (429). A successful login clears the
    per-email count: it counts the attempts since the last success.
    """
    failures_key = await _count_password_attempt(services, email, client_ip)
    user = await users.get_user_by_email(session, email)
    hashed = user.password_hash if user else await _dummy(services)
    ok, new_hash = await _verify(services, password, hashed)
    if user is None or not ok or not user.is_active:
        raise Unauthorized("Incorrect email or password.")
    if new_hash is not None:
        await users.update_password_hash(session, user.id, new_hash)
        await session.commit()
    await services.redis.delete(failures_key)
    return issue_access_token(services.settings, user.id, user.token_version)


async def _count_password_attempt(services: AppServices, email: str, client_ip: str) -> str:
    """Count one password check against both throttles (429 once over); the per-email key."""
    settings = services.settings
    await ratelimit.enforce(
        services.redis,
        ratelimit.limit_key("login-ip", client_ip),
        limit=settings.login_ip_max_attempts,
        window_s=settings.login_window_s,
        what="login attempts from this address",
    )
    failures_key = ratelimit.limit_key("login-fail", email.strip().lower(), client_ip)
    await ratelimit.enforce(
        services.redis,
        failures_key,
        limit=settings.login_max_failures,
        window_s=settings.login_window_s,
        what="failed logins",
    )
    return failures_key


async def change_password(
    session: AsyncSession,
    services: AppServices,
    user: User,
    body: PasswordChange,
    client_ip: str,
) -> IssuedToken:
    """Replace the password after checking the current one (throttled like a login), and
    revoke every token issued before: access tokens (the token version moves on) and API
    keys. Answers a fresh access token, so the caller stays logged in."""
    failures_key = await _count_password_attempt(services, user.email, client_ip)
    ok, _ = await _verify(services, body.current_password.get_secret_value(), user.password_hash)
    if not ok:
        raise Unauthorized("The current password is not correct.")
    await services.redis.delete(failures_key)
    new_password = body.new_password.get_secret_value()
    problems = password_problems(new_password, email=user.email)
    if new_password == body.current_password.get_secret_value():
        problems.append("must differ from the current password")
    if problems:
        raise InvalidInput("new password " + "; ".join(problems), loc=["body", "new_password"])
    password_hash = await _hash(services, new_password)
    version = await users.change_password(session, user.id, password_hash)
    await session.commit()
    log.info("password changed", extra={"user_id": str(user.id), "token_version": version})
    return issue_access_token(services.settings, user.id, version)


async def create_key(
    session: AsyncSession, services: AppServices, user: User, name: str
) -> tuple[ApiKey, str]:
    """A new key, unless the user already has ``API_KEYS_MAX_PER_USER`` active ones (409).

    The user's row is locked while counting, so concurrent creates cannot pass the cap
    together."""
    cap = services.settings.api_keys_max_per_user
    if await users.lock_user(session, user.id) is None:
        raise Unauthorized("Unknown or disabled user.", error="invalid_token")
    active = await api_keys.count_active_keys(session, user.id)
    if active >= cap:
        raise Conflict(
            f"You have {active} active API keys (limit {cap}); revoke one before creating another.",
            limit=cap,
        )
    material = new_api_key()
    key = await api_keys.create_api_key(
        session, user_id=user.id, name=name, prefix=material.prefix, key_hash=material.key_hash
    )
    await session.commit()
    return key, material.key


async def list_keys(session: AsyncSession, user: User) -> list[ApiKey]:
    return await api_keys.list_api_keys(session, user.id)


async def revoke_key(session: AsyncSession, user: User, key_id: uuid.UUID) -> None:
    if not await api_keys.revoke_api_key(session, user_id=user.id, key_id=key_id):
        raise NotFound("No such API key.")
    await session.commit()
