"""Who is calling: a bearer JWT or API key → ``Principal``; the loaded ``User`` when needed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from roadmap_api.auth.tokens import hash_api_key, is_api_key
from roadmap_api.db import SessionDep
from roadmap_api.errors import Forbidden, Unauthorized
from roadmap_api.state import services_of
from roadmap_db.models import User
from roadmap_db.repositories import api_keys, users

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    via: str
    # Loaded when authentication needed the database anyway (API keys).
    user: User | None = None


class BearerAuth(OAuth2PasswordBearer):
    """``Authorization: Bearer <JWT or API key>`` → ``Principal``.

    As an ``OAuth2PasswordBearer`` it documents the password flow in OpenAPI (API keys
    travel the same way); answering the principal itself, rather than the token for
    another dependency, saves a dependency level on every authenticated request.
    JWTs are checked without the database (their user is checked later, by
    ``get_current_user`` or by the statement that uses it).
    """

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        token = await super().__call__(request)
        if not token:
            raise Unauthorized()
        if is_api_key(token):
            async with services_of(request).db.transaction() as session:
                found = await api_keys.find_active_key(session, hash_api_key(token))
                if found is None:
                    raise Unauthorized("Invalid or revoked API key.", error="invalid_token")
                key, user = found
                await api_keys.touch_api_key(session, key.id)
            principal = Principal(user_id=user.id, via="api_key", user=user)
        else:
            try:
                user_id = services_of(request).access_tokens.user_id(token)
            except (jwt.InvalidTokenError, ValueError):
                raise Unauthorized("Invalid or expired token.", error="invalid_token") from None
            principal = Principal(user_id=user_id, via="jwt")
        request.state.user_id = str(principal.user_id)
        return principal


# The scheme keeps the name OpenAPI clients already know.
get_principal = BearerAuth(tokenUrl=TOKEN_URL, scheme_name="OAuth2PasswordBearer", auto_error=False)

PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: PrincipalDep, session: SessionDep) -> User:
    user = principal.user or await users.get_user(session, principal.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Unknown or disabled user.", error="invalid_token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("Administrators only.")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]
