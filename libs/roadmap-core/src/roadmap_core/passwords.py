"""Password hashing: argon2id with parameters at or above OWASP's recommendation."""

from __future__ import annotations

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1 is the minimum.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

_hasher = PasswordHash(
    (
        Argon2Hasher(
            memory_cost=ARGON2_MEMORY_KIB,
            time_cost=ARGON2_TIME_COST,
            parallelism=ARGON2_PARALLELISM,
        ),
    )
)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    return _hasher.verify(password, hashed)


def verify_and_update(password: str, hashed: str) -> tuple[bool, str | None]:
    """Verify; when parameters changed since hashing, also return a fresh hash to store."""
    return _hasher.verify_and_update(password, hashed)
