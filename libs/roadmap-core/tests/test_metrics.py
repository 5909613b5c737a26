"""Metrics summed over processes, and the token-guarded metrics server of the workers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr

from roadmap_core.metrics import processes
from roadmap_core.metrics.exposition import MetricsServer, bearer_matches

TOKEN = SecretStr("scrape-" + "a1" * 16)

FORKING = textwrap.dedent(
    """
    import os, sys
    from roadmap_core.metrics import processes
    from roadmap_core.metrics.exposition import render
    from prometheus_client import Counter

    processes.enable("test-service")
    counter = None
    children = []
    for n in (300, 700):
        pid = os.fork()
        if pid == 0:
            # A child builds its metrics after fork, as a Celery child does.
            counter = Counter("work_done", "units", registry=processes.LOCAL)
            counter.inc(n)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    sys.stdout.write(render(processes.LOCAL).decode())
    sys.stdout.write("DIR " + str(processes.enabled()) + "\\n")
    processes.release()
    """
)


def test_forked_processes_add_up_and_the_owner_cleans_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != processes.ENV}
    env["TMPDIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", FORKING], env=env, capture_output=True, text=True, timeout=60,
        check=True,
    ).stdout  # fmt: skip
    assert "work_done_total 1000.0" in out, out
    directory = Path(out.split("DIR ", 1)[1].strip())
    assert directory.parent.parent == tmp_path
    assert not directory.exists()


def test_a_stale_directory_of_a_dead_instance_is_swept(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != processes.ENV}
    env["TMPDIR"] = str(tmp_path)
    root = tmp_path / f"roadmap-metrics-{os.getuid()}"
    stale = root / "test-service-999999999-1"
    stale.mkdir(parents=True)
    (stale / "counter_999999999.db").write_bytes(b"")
    script = "from roadmap_core.metrics import processes; print(processes.enable('test-service'))"
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
        check=True,
    ).stdout  # fmt: skip
    assert not stale.exists()
    assert Path(out.strip()).parent == root


def _get(url: str, token: str | None = None, method: str = "GET") -> int:
    request = urllib.request.Request(url, method=method)  # noqa: S310 - loopback only
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    registry = CollectorRegistry()
    Counter("scraped_thing", "a thing", registry=registry).inc(3)
    server = MetricsServer(host="127.0.0.1", port=0, token=TOKEN, registry=registry)
    server.start()
    yield server
    server.stop()


def test_the_worker_metrics_server_answers_only_the_scrape_token(server: MetricsServer) -> None:
    url = f"http://127.0.0.1:{server.port}/metrics"
    assert _get(url) == 401
    assert _get(url, "wrong-token") == 401
    assert _get(url, TOKEN.get_secret_value()) == 200
    assert _get(url, TOKEN.get_secret_value(), method="POST") == 405
    assert _get(url.replace("/metrics", "/"), TOKEN.get_secret_value()) == 404
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {TOKEN.get_secret_value()}"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
        assert "scraped_thing_total 3.0" in answer.read().decode()


def test_bearer_matching() -> None:
    assert bearer_matches(f"Bearer {TOKEN.get_secret_value()}", TOKEN)
    assert bearer_matches(f"bearer  {TOKEN.get_secret_value()} ", TOKEN)
    assert not bearer_matches(None, TOKEN)
    assert not bearer_matches(f"Basic {TOKEN.get_secret_value()}", TOKEN)
    assert not bearer_matches("Bearer", TOKEN)


def test_stopping_a_server_whose_loop_does_not_answer_returns() -> None:
    # A serving loop that never notices the shutdown (here: never started) made stop() wait
    # forever, inside the worker's SIGTERM handler; the platform's SIGKILL ended it.
    stuck = MetricsServer(host="127.0.0.1", port=0, token=TOKEN, registry=CollectorRegistry())
    done = threading.Event()

    def stop() -> None:
        stuck.stop(timeout_s=0.2)
        done.set()

    threading.Thread(target=stop, daemon=True).start()
    assert done.wait(30), "stop() did not return"
