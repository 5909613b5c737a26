"""The preparation script's own logic, without an engine (fast; runs in every `uv run pytest`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infra.containers import engine, prepare
from roadmap_devservers import containers, provide

PREPARE = Path(prepare.__file__)


def test_the_printed_environment_names_the_settings_the_code_reads() -> None:
    env = prepare.environment(Path("/run/x/podman.sock"))
    assert env["DOCKER_HOST"] == "unix:///run/x/podman.sock"
    assert env[containers.POSTGRES_IMAGE_ENV] == prepare.POSTGRES_IMAGE
    assert env[containers.REDIS_IMAGE_ENV] == prepare.REDIS_IMAGE
    assert env[engine.PYTHON_IMAGE_ENV] == prepare.PYTHON_IMAGE
    assert env["TESTCONTAINERS_RYUK_DISABLED"] == "true"
    # Never TEST_SERVERS: asking for containers is the caller's decision.
    assert provide.TEST_SERVERS not in env


def test_conmon_monitors_name_their_containers() -> None:
    processes = {
        10: ["/usr/bin/conmon", "--api-version", "1", "-c", "abc123", "-u", "def"],
        11: ["/usr/bin/conmon", "-c"],
        12: ["sleep", "-c", "not-a-monitor"],
    }
    assert prepare.conmon_containers(processes) == {"abc123"}


def test_stand_in_inputs_follow_their_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x.Containerfile").write_text("FROM base\n")
    (tmp_path / "entry.sh").write_text("#!/bin/sh\n")
    monkeypatch.setattr(prepare, "STANDINS", tmp_path)
    standin = prepare.Derived("localhost/x:1", "x.Containerfile", ("entry.sh",))
    first = standin.inputs("sha256:base")
    assert standin.inputs("sha256:base") == first
    assert standin.inputs("sha256:other-base") != first
    (tmp_path / "entry.sh").write_text("#!/bin/sh\nexec true\n")
    assert standin.inputs("sha256:base") != first


def test_only_and_a_command_do_not_mix(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["--only", "--", "true"])
    assert exit_info.value.code == 2
    assert "--only starts nothing" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="the engine socket folder is root's")
def test_stopping_ends_the_orphans_left_to_us(tmp_path: Path) -> None:
    """podman's monitors detach from the service; as subreaper we still find and end them."""
    script = textwrap.dedent(
        f"""
        import json, os, subprocess, sys, time
        sys.path.insert(0, {str(PREPARE.parent)!r})
        import prepare
        prepare._prctl(prepare._PR_SET_CHILD_SUBREAPER, 1)
        # A grandchild whose parent exits at once, as a daemonizing monitor does.
        out = subprocess.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"],
                             capture_output=True, text=True, check=True).stdout
        orphan = int(out)
        time.sleep(0.2)
        adopted = orphan in prepare.descendants(os.getpid())
        prepare.Engine().stop()
        print(json.dumps({{"orphan": orphan, "adopted": adopted}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["adopted"], "the orphan was not re-parented to the subreaper"
    assert not Path(f"/proc/{report['orphan']}").exists(), "the orphan outlived the stop"


def test_the_stand_in_and_fake_llm_containerfiles_are_lint_clean() -> None:
    files = [
        *sorted(prepare.STANDINS.glob("*.Containerfile")),
        PREPARE.parent / "fake-llm.Dockerfile",
    ]
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), *map(str, files)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
