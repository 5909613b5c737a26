"""Access tokens (JWT, HS256 pinned) and API keys (random, shown once, stored as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from roadmap_api.settings import ApiSettings

ALGORITHM = "HS256"
API_KEY_PREFIX = "rmk_"
API_KEY_DISPLAY_CHARS = 12
LEEWAY_S = 5


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int


def issue_access_token(settings: ApiSettings, user_id: uuid.UUID) -> IssuedToken:
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + settings.access_token_ttl_s,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, settings.jwt_secret_key.get_secret_value(), algorithm=ALGORITHM)
    return IssuedToken(token=token, expires_in=settings.access_token_ttl_s)


def decode_access_token(settings: ApiSettings, token: str) -> uuid.UUID:
    """The user id of a valid token; raises ``jwt.InvalidTokenError`` (or ValueError) if not.

    Only HS256 is accepted (so ``alg=none`` and algorithm confusion fail), and ``exp``,
    ``iss``, ``aud`` and ``sub`` are required and checked.
    """
    claims = jwt.decode(
        token,
        settings.jwt_secret_key.get_secret_value(),
        algorithms=[ALGORITHM],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway=LEEWAY_S,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    return uuid.UUID(str(claims["sub"]))


def is_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: str
    prefix: str
    key_hash: str


def new_api_key() -> NewApiKey:
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(key=key, prefix=key[:API_KEY_DISPLAY_CHARS], key_hash=hash_api_key(key))


def hash_api_key(key: str) -> str:
    # The key carries 256 random bits, so a fast unsalted hash cannot be brute-forced.
    return hashlib.sha256(key.encode()).hexdigest()
