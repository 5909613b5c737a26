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


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified access token says: its user, the user's token version when it was
    issued (``users.token_version``; a password change moves it on), and until when the
    token is accepted."""

    user_id: uuid.UUID
    version: int
    accepted_until: float


def issue_access_token(settings: ApiSettings, user_id: uuid.UUID, version: int) -> IssuedToken:
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "ver": version,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + settings.access_token_ttl_s,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, settings.jwt_secret_key.get_secret_value(), algorithm=ALGORITHM)
    return IssuedToken(token=token, expires_in=settings.access_token_ttl_s)


def verify_access_token(settings: ApiSettings, token: str) -> TokenClaims:
    """The claims of a valid token; raises ``jwt.InvalidTokenError`` (or ValueError) if it
    is not valid. Whether its version is still the user's is for the caller to check.

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
    version = claims.get("ver", 0)  # tokens issued before versions existed: version 0
    if not isinstance(version, int) or isinstance(version, bool):
        raise jwt.InvalidTokenError("malformed token version")
    return TokenClaims(
        user_id=uuid.UUID(str(claims["sub"])),
        version=version,
        accepted_until=float(claims["exp"]) + LEEWAY_S,
    )


class AccessTokens:
    """Verifies access tokens, remembering the ones that passed until they expire.

    A client sends the same token with every request; checking its signature and claims
    again each time costs more CPU than the rest of a small request's authentication. Only
    tokens that verified are kept (by their full text), each for no longer than its own
    ``exp`` allows, so a cached answer is the answer verification would give. The user
    behind a token, and its token version, are still checked by every request that uses
    it (``get_current_user`` or the submit statement), so a disabled user or a token
    revoked by a password change is refused at once.
    """

    def __init__(
        self,
        settings: ApiSettings,
        *,
        max_tokens: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._valid: TLRUCache[str, TokenClaims] = TLRUCache(
            maxsize=max_tokens, ttu=lambda _token, found, _now: found.accepted_until, timer=clock
        )

    def claims(self, token: str) -> TokenClaims:
        """Raises ``jwt.InvalidTokenError`` (or ValueError) for a token that is not valid."""
        found = self._valid.get(token)
        if found is None:
            found = verify_access_token(self._settings, token)
            self._valid[token] = found
        return found


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
