"""Per-data-dir secrets: the admin and demo accounts and the JWT key, kept in a 0600 file.

Generated once per `.roadmap/`, so a second `roadmap up` shows (and accepts) the same ones.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import tempfile
from pathlib import Path

from pydantic import BaseModel, ValidationError

from roadmap_dev.errors import StaleDataError

ADMIN_EMAIL = "admin@example.com"
DEMO_EMAIL = "demo@example.com"


class Account(BaseModel):
    email: str
    password: str


class Credentials(BaseModel):
    admin: Account
    demo: Account
    jwt_secret_key: str


def new_password(length: int = 20) -> str:
    """Random, and with every character class so any reasonable password policy accepts it."""
    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(length - 4))
    return (
        secrets.choice(string.ascii_lowercase)
        + secrets.choice(string.ascii_uppercase)
        + body
        + secrets.choice(string.digits)
        + secrets.choice("-_.!")
    )


def generate() -> Credentials:
    return Credentials(
        admin=Account(email=ADMIN_EMAIL, password=new_password()),
        demo=Account(email=DEMO_EMAIL, password=new_password()),
        jwt_secret_key=secrets.token_urlsafe(48),
    )


def load(path: Path) -> Credentials | None:
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # someone loosened it; secrets stay private to the owner
    try:
        return Credentials.model_validate_json(raw)
    except ValidationError as exc:
        raise StaleDataError(
            f"{path} is not a credentials file this version understands; "
            "run `uv run roadmap reset` to start with fresh dev data"
        ) from exc


def save(path: Path, creds: Credentials) -> None:
    """Write atomically with mode 0600 from the start (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=path.parent)  # mkstemp: 0600
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(creds.model_dump(), handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_or_create(path: Path) -> tuple[Credentials, bool]:
    """The data dir's credentials, and whether they were created just now."""
    existing = load(path)
    if existing is not None:
        return existing, False
    creds = generate()
    save(path, creds)
    return creds, True
