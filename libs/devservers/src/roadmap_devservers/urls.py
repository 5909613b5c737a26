"""Small URL helpers: swap the database part, drop SQLAlchemy driver suffixes, redact."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def with_path(url: str, path: str) -> str:
    """`url` with its path replaced (database name for Postgres, db index for Redis)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + path.lstrip("/")))


def plain_postgres_url(url: str) -> str:
    """`postgresql+asyncpg://…` / `postgres://…` → `postgresql://…` (what asyncpg and libpq take)."""
    parts = urlsplit(url)
    base = parts.scheme.split("+", 1)[0]
    if base not in {"postgres", "postgresql"}:
        raise ValueError(f"not a PostgreSQL URL: {redact(url)}")
    return urlunsplit(parts._replace(scheme="postgresql"))


def redact(url: str) -> str:
    """The URL with any password replaced, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
