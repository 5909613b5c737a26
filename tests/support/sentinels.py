"""Sentinel secrets every started service gets, and the registry promise 17 scans for.

The values are random per session, so finding one in a log line can only mean it leaked
from this run.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

# Shortest string worth scanning for: shorter ones match by chance.
MIN_SECRET_CHARS = 12
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.([A-Za-z0-9_-]{20,})$")


def _token(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(16)}"


@dataclass(frozen=True)
class SessionSecrets:
    """Secrets configured into every process of this test session."""

    openai_api_key: str = field(default_factory=lambda: _token("sk-test-SENTINEL-"))
    jwt_secret_key: str = field(default_factory=lambda: _token("jwt-SENTINEL-"))
    admin_email: str = "admin@reliability.example.com"
    admin_password: str = field(default_factory=lambda: _token("Admin-SENTINEL-"))

    def values(self) -> list[str]:
        return [self.openai_api_key, self.jwt_secret_key, self.admin_password]


class SecretRegistry:
    """Every secret the suite created or was handed: passwords, tokens, API keys."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()

    def add(self, *values: str | None) -> None:
        with self._lock:
            for value in values:
                if not value or len(value) < MIN_SECRET_CHARS:
                    continue
                self._secrets.add(value)
                # A JWT cut short in a log line still carries its signature.
                match = _JWT.match(value)
                if match:
                    self._secrets.add(match.group(1))

    def extend(self, values: Iterable[str]) -> None:
        self.add(*values)

    def snapshot(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._secrets)

    def __len__(self) -> int:
        with self._lock:
            return len(self._secrets)


def new_password() -> str:
    """A password that passes the API's policy and is unique to this session."""
    return _token("Pw-SENTINEL-")
