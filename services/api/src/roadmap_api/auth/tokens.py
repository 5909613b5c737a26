"""Access tokens (JWT, HS256 pinned) and API keys (random, shown once, stored as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from cachetools import TLRUCache

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


def verify_access_token(settings: ApiSettings, token: str) -> tuple[uuid.UUID, float]:
    """(user id, unix time it stops being accepted) of a valid token; raises
    ``jwt.InvalidTokenError`` (or ValueError) if it is not valid.

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
    return uuid.UUID(str(claims["sub"])), float(claims["exp"]) + LEEWAY_S


class AccessTokens:
    """Verifies access tokens, remembering the ones that passed until they expire.

    A client sends the same token with every request; checking its signature and claims
    again each time costs more CPU than the rest of a small request's authentication. Only
    tokens that verified are kept (by their full text), each for no longer than its own
    ``exp`` allows, so a cached answer is the answer verification would give. The user
    behind a token is still checked by every request that uses it (``get_current_user``
    or the statement itself), so a disabled user is refused at once.
    """

    def __init__(
        self,
        settings: ApiSettings,
        *,
        max_tokens: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._valid: TLRUCache[str, tuple[uuid.UUID, float]] = TLRUCache(
            maxsize=max_tokens, ttu=lambda _token, found, _now: found[1], timer=clock
        )

    def user_id(self, token: str) -> uuid.UUID:
        """Raises ``jwt.InvalidTokenError`` (or ValueError) for a token that is not valid."""
        found = self._valid.get(token)
        if found is None:
            found = verify_access_token(self._settings, token)
            self._valid[token] = found
        return found[0]


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
