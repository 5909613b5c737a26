"""``/api/v1/auth/*`` and ``/api/v1/me*``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response, status

from roadmap_api.auth import service
from roadmap_api.auth.deps import CurrentUser, PasswordLoginUser
from roadmap_api.auth.policy import MAX_LENGTH
from roadmap_api.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    PasswordChange,
    RegisterRequest,
    TokenOut,
    UserOut,
)
from roadmap_api.db import ServicesDep, SessionDep
from roadmap_api.responses import AUTH_ERRORS, errors
from roadmap_core.text import STORABLE

router = APIRouter(prefix="/api/v1", tags=["auth"])


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/auth/register",
    operation_id="auth_register",
    status_code=status.HTTP_201_CREATED,
    responses=errors(409, 422, 429),
)
async def register(
    body: RegisterRequest, request: Request, session: SessionDep, services: ServicesDep
) -> UserOut:
    """Create an account. The password must pass the policy (length ≥ 12, not trivial)."""
    user = await service.register(session, services, body, client_ip(request))
    return UserOut.model_validate(user)


@router.post("/auth/token", operation_id="auth_token_create", responses=errors(401, 422, 429))
async def token(
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    username: Annotated[str, Form(min_length=1, max_length=320, description="the email"), STORABLE],
    password: Annotated[str, Form(min_length=1, max_length=MAX_LENGTH)],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
    scope: Annotated[str, Form(max_length=200), STORABLE] = "",
) -> TokenOut:
    """OAuth2 password grant: exchange email + password for a bearer access token."""
    issued = await service.login(
        session, services, email=username, password=password, client_ip=client_ip(request)
    )
    return TokenOut(access_token=issued.token, expires_in=issued.expires_in)


@router.get("/me", operation_id="me_get", responses=AUTH_ERRORS)
async def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


# Credentials are managed with a password login only (an access token, not an API key).
CREDENTIAL_ERRORS = {**AUTH_ERRORS, **errors(403)}
ACCESS_TOKEN_ONLY: dict[str, Any] = {"security": [{"accessToken": []}]}


@router.post(
    "/me/password",
    operation_id="password_change",
    responses={**CREDENTIAL_ERRORS, **errors(422, 429)},
    openapi_extra=ACCESS_TOKEN_ONLY,
)
async def change_password(
    body: PasswordChange,
    request: Request,
    user: PasswordLoginUser,
    session: SessionDep,
    services: ServicesDep,
) -> TokenOut:
    """Change your password (the current one is checked, throttled like a login).

    Revokes every token issued before: all access tokens and all API keys stop working,
    and any open event stream ends. Answers a new access token.
    """
    issued = await service.change_password(session, services, user, body, client_ip(request))
    return TokenOut(access_token=issued.token, expires_in=issued.expires_in)


@router.get(
    "/me/api-keys",
    operation_id="api_keys_list",
    responses=CREDENTIAL_ERRORS,
    openapi_extra=ACCESS_TOKEN_ONLY,
)
async def list_api_keys(user: PasswordLoginUser, session: SessionDep) -> ApiKeyList:
    keys = await service.list_keys(session, user)
    return ApiKeyList(items=[ApiKeyOut.model_validate(k) for k in keys])


@router.post(
    "/me/api-keys",
    operation_id="api_keys_create",
    status_code=status.HTTP_201_CREATED,
    responses={**CREDENTIAL_ERRORS, **errors(409, 422)},
    openapi_extra=ACCESS_TOKEN_ONLY,
)
async def create_api_key(
    body: ApiKeyCreate, user: PasswordLoginUser, session: SessionDep, services: ServicesDep
) -> ApiKeyCreated:
    """Create an API key (at most ``API_KEYS_MAX_PER_USER`` active ones: 409 beyond).

    The full key is in this response only; it is stored hashed.
    """
    key, secret = await service.create_key(session, services, user, body.name)
    return ApiKeyCreated(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        key=secret,
    )


@router.delete(
    "/me/api-keys/{key_id}",
    operation_id="api_keys_revoke",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**CREDENTIAL_ERRORS, **errors(404, 422)},
    openapi_extra=ACCESS_TOKEN_ONLY,
)
async def revoke_api_key(
    key_id: uuid.UUID, user: PasswordLoginUser, session: SessionDep
) -> Response:
    """Revoke a key: it stops working immediately."""
    await service.revoke_key(session, user, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
