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


VIA_ACCESS_TOKEN = "jwt"  # noqa: S105 - a label, not a secret
VIA_API_KEY = "api_key"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    via: str
    # Loaded when authentication needed the database anyway (API keys).
    user: User | None = None
    # Access tokens: the user's token version they were issued with (API keys: None).
    token_version: int | None = None

    @property
    def is_password_login(self) -> bool:
        """Authenticated by an access token from a password login, not by an API key."""
        return self.via == VIA_ACCESS_TOKEN


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
            principal = Principal(user_id=user.id, via=VIA_API_KEY, user=user)
        else:
            try:
                claims = services_of(request).access_tokens.claims(token)
            except (jwt.InvalidTokenError, ValueError):
                raise Unauthorized("Invalid or expired token.", error="invalid_token") from None
            principal = Principal(
                user_id=claims.user_id, via=VIA_ACCESS_TOKEN, token_version=claims.version
            )
        request.state.user_id = str(principal.user_id)
        return principal


# The scheme keeps the name OpenAPI clients already know.
get_principal = BearerAuth(tokenUrl=TOKEN_URL, scheme_name="OAuth2PasswordBearer", auto_error=False)

PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: PrincipalDep, session: SessionDep) -> User:
    user = principal.user or await users.get_user(session, principal.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Unknown or disabled user.", error="invalid_token")
    if principal.token_version is not None and principal.token_version != user.token_version:
        raise Unauthorized("This token was revoked by a password change.", error="invalid_token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_password_login_user(principal: PrincipalDep, user: CurrentUser) -> User:
    """The user, when the request carries an access token from a password login.

    Managing credentials (API keys, the password) takes a password login: a leaked API
    key must not be able to mint keys that outlive its own revocation.
    """
    if not principal.is_password_login:
        raise Forbidden(
            "API keys cannot manage credentials; use an access token from /api/v1/auth/token."
        )
    return user


PasswordLoginUser = Annotated[User, Depends(get_password_login_user)]


async def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("Administrators only.")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]
