"""Per-data-dir credentials: private file, stable across runs, strong passwords."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from roadmap_dev import credentials
from roadmap_dev.errors import StaleDataError


def test_created_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    first, fresh = credentials.load_or_create(path)
    assert fresh
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second, fresh_again = credentials.load_or_create(path)
    assert not fresh_again
    assert second == first
    assert first.admin.password != first.demo.password
    assert len(first.jwt_secret_key) >= 32


def test_loosened_permissions_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    credentials.load_or_create(path)
    path.chmod(0o644)
    credentials.load(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_passwords_have_every_character_class() -> None:
    for _ in range(50):
        password = credentials.new_password()
        assert len(password) >= 16
        for pattern in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[-_.!]"):
            assert re.search(pattern, password)


def test_a_foreign_file_asks_for_reset(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text('{"admin": "someone else"}')
    with pytest.raises(StaleDataError, match="roadmap reset"):
        credentials.load(path)
