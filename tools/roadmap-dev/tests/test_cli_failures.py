"""Friendly failures: one line on stderr saying what to do, a non-zero exit, no traceback."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rich.console import Console

from roadmap_dev import devstack, state
from roadmap_dev.errors import MissingToolError
from roadmap_dev.paths import Layout
from roadmap_dev.stack import process_start_time
from roadmap_dev.testing import kill_leftovers, traversable_tmp

REPO_ROOT = Path(__file__).resolve().parents[3]


def roadmap(
    *args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "80", **(env or {})}
    full_env.pop("ROADMAP_DATA_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "roadmap_dev.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = roadmap("up", "--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert result.returncode != 0
    line = one_line(result.stderr)
    assert f"port {port}" in line
    assert "already in use" in line
    assert "--port" in line


def test_stale_data_dir_from_another_version(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "VERSION").write_text("0\n")
    result = roadmap("up", "--port", "0", "--data-dir", str(data))
    assert result.returncode != 0
    assert "roadmap reset" in one_line(result.stderr)


def test_postgres_data_from_another_major_version() -> None:
    with traversable_tmp() as base:
        postgres_data_from_another_major_version(base / "data")


def postgres_data_from_another_major_version(data: Path) -> None:
    (data / "postgres" / "pgdata").mkdir(parents=True)
    (data / "postgres" / "pgdata" / "PG_VERSION").write_text("15\n")
    (data / "VERSION").write_text(devstack.DATA_LAYOUT_VERSION + "\n")
    result = roadmap("up", "--port", "0", "--data-dir", str(data))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("roadmap:")]
    assert len(lines) == 1, result.stderr
    assert "PostgreSQL 15" in lines[0]
    assert "roadmap reset" in lines[0]
    assert "Traceback" not in result.stderr


def test_data_dir_not_made_by_us(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "postgres").mkdir(parents=True)
    result = roadmap("demo", "--data-dir", str(data))
    assert result.returncode != 0
    assert "roadmap reset" in one_line(result.stderr)


def test_a_second_stack_on_the_same_data_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "VERSION").write_text(devstack.DATA_LAYOUT_VERSION + "\n")
    holder = subprocess.Popen(["sleep", "60"])
    try:
        started = process_start_time(holder.pid)
        me = state.ProcessRecord(name="roadmap", pid=holder.pid, started_at=started)
        state.write(data / "stack.json", state.StackRecord(cli=me, api_url="http://127.0.0.1:9"))
        result = roadmap("up", "--port", "0", "--data-dir", str(data))
    finally:
        kill_leftovers([holder.pid])
        holder.wait()
    assert result.returncode != 0
    line = one_line(result.stderr)
    assert "already running" in line
    assert "roadmap down" in line


def test_down_without_a_stack_is_a_no_op(tmp_path: Path) -> None:
    result = roadmap("down", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0
    assert "nothing to stop" in one_line(result.stderr)


def test_reset_deletes_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "postgres").mkdir(parents=True)
    result = roadmap("reset", "--data-dir", str(data))
    assert result.returncode == 0
    assert not data.exists()


def _workspace(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.uv.workspace]\nmembers = ["tools/roadmap-dev"]\n'
    )
    return tmp_path


def test_bench_without_a_runner(tmp_path: Path) -> None:
    result = roadmap("bench", cwd=_workspace(tmp_path))
    assert result.returncode != 0
    line = one_line(result.stderr)
    assert "bench/run.py does not exist" in line


def test_bench_runs_the_runner_with_its_arguments(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    (root / "bench").mkdir()
    (root / "bench" / "helper_mod.py").write_text("VALUE = 'imported'\n")
    (root / "bench" / "run.py").write_text(
        "import sys\nimport helper_mod\n"
        "print(helper_mod.VALUE, sys.argv[1:])\nsys.exit(3 if 'fail' in sys.argv else 0)\n"
    )
    ok = roadmap("bench", "api", "--quick", cwd=root)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "imported ['api', '--quick']"
    failed = roadmap("bench", "fail", cwd=root)
    assert failed.returncode == 3


def test_missing_packages_and_no_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    needed = {"roadmap_no_such_module": "the thing"}
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/uv")
    with pytest.raises(MissingToolError, match=r"cannot import the thing: run `uv sync`"):
        devstack.require_modules(needed)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MissingToolError, match=r"`uv` is missing: run `pip install uv`"):
        devstack.require_modules(needed)
    devstack.require_modules({"json": "the json module"})


def test_generate_against_an_api_that_is_not_there() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = roadmap("generate", "Learn Go", "--api", f"http://127.0.0.1:{port}", "--token", "t")
    assert result.returncode != 0
    line = one_line(result.stderr)
    assert f"cannot reach http://127.0.0.1:{port}" in line
    assert "is the API running?" in line


def test_flower_missing_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = devstack.module_available
    monkeypatch.setattr(devstack, "module_available", lambda name: name != "flower" and real(name))
    layout = Layout(root=REPO_ROOT, data_dir=tmp_path / "data")
    stack = devstack.DevStack(
        layout,
        devstack.StackOptions(port=0, flower=True, flower_port=0),
        console=Console(file=io.StringIO()),
        stop=threading.Event(),
    )
    with stack, pytest.raises(MissingToolError, match="flower is not installed"):
        stack.start()
    assert not (layout.data_dir / "postgres").exists()  # failed before starting anything
