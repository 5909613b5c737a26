"""Shared helpers for the devservers tests (fixtures under test come from the plugin itself)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from roadmap_devservers._process import private_temp_dir


@pytest.fixture
def server_dir() -> Iterator[Path]:
    # Not tmp_path: /tmp/pytest-of-root is 0700, which the unprivileged postgres user
    # cannot traverse when the tests run as root.
    with private_temp_dir("devservers-test-") as path:
        yield path
