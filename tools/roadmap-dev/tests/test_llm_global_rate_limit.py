"""Two client processes share one global request rate through Redis (measured at the fake)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from roadmap_dev.fake_llm import FakeLLM, fake_llm_server

CLIENT = Path(__file__).with_name("llm_rate_client.py")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with fake_llm_server(seed=2, latency_ms=20) as server:
        yield server


def test_two_processes_stay_under_the_configured_rate(fake: FakeLLM, redis_url: str) -> None:
    rpm, window, per_process = 300, 2.0, 15  # 10 requests per 2 s window, 30 in all
    per_window = int(rpm * window / 60)
    prefix = f"test:rate:{uuid.uuid4()}"
    argv = [
        sys.executable,
        str(CLIENT),
        fake.base_url,
        redis_url,
        prefix,
        str(per_process),
        str(rpm),
        str(window),
    ]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    results = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    assert [r["ok"] for r in results] == [per_process, per_process], [
        err.decode()[-2000:] for _, err in outputs
    ]

    arrivals = sorted(e["ts"] for e in fake.requests())
    assert len(arrivals) == 2 * per_process
    # Requests are admitted by Redis's clock and reach the fake a little later (more so
    # on a busy machine); measuring over a shorter window absorbs that delay's jitter
    # while an unlimited run (all 30 within a fraction of a second) still fails.
    measure = window - 0.5
    busiest = max(sum(1 for u in arrivals if t <= u < t + measure) for t in arrivals)
    assert busiest <= per_window
    # 30 requests at 10 per window need at least two full windows of waiting.
    assert arrivals[-1] - arrivals[0] >= 2 * window - 0.5
    pids = {e["pid"] for e in fake.requests()} - {None}
    assert pids <= {r["pid"] for r in results}
