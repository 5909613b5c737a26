"""`roadmap demo --json`: embedded servers (what a newcomer runs) and given DATABASE_URL/REDIS_URL."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from roadmap_dev.paths import find_repo_root
from roadmap_dev.testing import cli_env, processes_mentioning, traversable_tmp

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with traversable_tmp() as base:
        yield base / "data"


def test_demo_json_on_embedded_servers(data_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "roadmap_dev.cli", "demo", "--json", "--data-dir", str(data_dir)],
        cwd=find_repo_root(),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    check_demo_json(result.stdout)
    assert re.search(r"stack ready: web UI http://127\.0\.0\.1:\d+", result.stderr)
    assert "roadmap demo --keep-running" in result.stderr  # how to look around afterwards
    assert processes_mentioning(str(data_dir)) == []
    assert not (data_dir / "stack.json").exists()


def check_demo_json(stdout: str) -> None:
    roadmap = json.loads(stdout)  # nothing but the JSON on stdout
    assert roadmap["status"] == "completed"
    concepts = [
        concept
        for stage in roadmap["framework"]["stages"]
        for module in stage["modules"]
        for concept in module["concepts"]
    ]
    assert concepts
    for concept in concepts:
        assert set(concept["content"]) == {"tutorial", "resources", "quiz"}
        assert {item["status"] for item in concept["content"].values()} == {"succeeded"}
    assert roadmap["progress"]["total"] == 3 * len(concepts) == roadmap["progress"]["done"]
    assert roadmap["usage"]["prompt_tokens"] > 0


def test_demo_json_against_given_postgres_and_redis(database_url: str, redis_url: str) -> None:
    with traversable_tmp() as base:
        data_dir = base / "data"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "roadmap_dev.cli",
                "demo",
                "--json",
                "--data-dir",
                str(data_dir),
            ],
            cwd=find_repo_root(),
            env=cli_env(DATABASE_URL=database_url, REDIS_URL=redis_url),
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        check_demo_json(result.stdout)
        assert not (data_dir / "postgres").exists()
        assert not (data_dir / "redis").exists()
        assert processes_mentioning(str(data_dir)) == []
