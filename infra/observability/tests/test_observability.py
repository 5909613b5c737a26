"""The dashboard and alert rules as code: valid, tested, and about metrics that exist.

``promtool`` comes from Debian's ``prometheus`` package (``.ci/run`` installs it when it is
missing); without it these tests fail in CI and are skipped on a developer's machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

HERE = Path(__file__).resolve().parents[1]
DASHBOARD = HERE / "grafana-dashboard.json"
SCHEMA = HERE / "grafana-dashboard.schema.json"
ALERTS = HERE / "alerts.yml"
ALERT_TESTS = HERE / "alerts.test.yml"
METRIC = re.compile(r"\b(roadmap_[a-z0-9_]+|up)\b")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def alert_exprs() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [r["expr"] for group in rules["groups"] for r in group["rules"]]


def exported_metrics() -> set[str]:
    """Every sample name the services export, from their own metric definitions."""
    from roadmap_api.metrics import ApiMetrics
    from roadmap_core.metrics.llm import llm_metrics
    from roadmap_core.metrics.tasks import task_metrics
    from roadmap_worker_content.metrics import jobs_finished
    from roadmap_worker_logs.metrics import logs_metrics

    api = ApiMetrics()
    registry = CollectorRegistry()
    held: list[Any] = [llm_metrics(), task_metrics(), logs_metrics()]
    for metric in (
        *(getattr(h, field.name) for h in held for field in dataclasses.fields(h)),
        api.request_duration, api.enqueue_failures, api.scrape_errors, jobs_finished(),
    ):  # fmt: skip
        registry.register(metric)
    names: set[str] = set()
    for family in registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        names.update(family.name + s for s in suffixes.get(family.type, [""]))
    # Read at scrape time (roadmap_core.metrics.queues, roadmap_api.health.service).
    names.update({
        "roadmap_jobs", "roadmap_queue_depth", "roadmap_queue_oldest_age_seconds",
        "roadmap_metrics_scrape_errors_total", "up",
    })  # fmt: skip
    return names


def test_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    tool = promtool()
    checked = run(tool, "check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(tool, "test", "rules", str(ALERT_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_rules_alert_on_what_the_issue_asks() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    names = {r["alert"] for group in rules["groups"] for r in group["rules"]}
    assert {
        "RoadmapQueueStuck",
        "RoadmapJobFailureRate",
        "RoadmapLLMErrorRate",
        "RoadmapApiLatencyP99",
        "RoadmapLogsLag",
    } <= names


def test_dashboard_matches_its_schema() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = run(str(checker), "--schemafile", str(SCHEMA), str(DASHBOARD))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_layout_has_unique_ids_and_no_overlap() -> None:
    panels = dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_query_names_metrics_the_services_export() -> None:
    exported = exported_metrics()
    for expr in dashboard_exprs() + alert_exprs():
        used = set(METRIC.findall(expr))
        assert used, expr
        assert used <= exported, f"{sorted(used - exported)} in {expr!r} are not exported"


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    tool = promtool()
    # promtool parses PromQL in rule files: one recording rule per panel query.
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, expr in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = run(tool, "check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
