"""The README's environment table lists every setting of every process, each once, and no more."""

from __future__ import annotations

import re

import typer

from roadmap_api.settings import ApiSettings
from roadmap_db.settings import MigrateSettings
from roadmap_dev.cli import app
from roadmap_dev.paths import find_repo_root
from roadmap_web.settings import WebSettings
from roadmap_worker_content.settings import ContentWorkerSettings
from roadmap_worker_logs.settings import LogsWorkerSettings

SETTINGS = (ApiSettings, ContentWorkerSettings, LogsWorkerSettings, WebSettings, MigrateSettings)
# Read outside the settings classes: the test fixtures' servers, the container tests' images
# (roadmap_devservers.containers, infra/containers/engine.py), Celery's signal remap, and
# the standard variables of OpenTelemetry (roadmap_core.telemetry) and prometheus_client.
OTHER = {
    "TEST_DATABASE_URL",
    "TEST_REDIS_URL",
    "TEST_SERVERS",
    "ROADMAP_POSTGRES_IMAGE",
    "ROADMAP_REDIS_IMAGE",
    "ROADMAP_PYTHON_IMAGE",
    "ROADMAP_BUILD_CA_BUNDLE",
    "REMAP_SIGTERM",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "PROMETHEUS_MULTIPROC_DIR",
}
HEADING = "## Environment variables"


def documented_table() -> str:
    """The environment table of README.md."""
    text = (find_repo_root() / "README.md").read_text()
    assert HEADING in text, f"no '{HEADING}' section in README.md"
    return text.split(HEADING, 1)[1].split("\n## ", 1)[0]


def cli_envvars() -> set[str]:
    names: set[str] = set()
    commands = getattr(typer.main.get_command(app), "commands", {})
    assert "up" in commands
    for command in commands.values():
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            if isinstance(envvar, str):
                names.add(envvar)
    return names


def test_every_variable_is_documented_once() -> None:
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", documented_table(), flags=re.MULTILINE)
    assert len(rows) == len(set(rows)), "a variable is listed twice"
    expected = {name.upper() for cls in SETTINGS for name in cls.model_fields}
    expected |= cli_envvars() | OTHER
    assert sorted(expected - set(rows)) == [], "settings missing from the table"
    assert sorted(set(rows) - expected) == [], "the table lists variables nothing reads"
