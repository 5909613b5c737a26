"""The fake LLM over HTTP: OpenAI shapes, control endpoints, scripted and random faults."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from roadmap_core.domain import IntentAnalysis, Quiz, RoadmapRequest
from roadmap_core.llm import PromptName, render_messages, response_format
from roadmap_dev.fake_llm import FakeConfig, FakeLLM, fake_llm_server, start_fake_llm
from roadmap_dev.fake_llm.__main__ import parse_args

REQ = RoadmapRequest(goal="Learn SQL", level="beginner", weekly_hours=4, weeks=5)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with fake_llm_server(seed=3) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake: FakeLLM) -> None:
    fake.configure(**FakeConfig(seed=3).model_dump(mode="json"))
    fake.reset()


def body(goal: str = "Learn SQL", model: type = IntentAnalysis) -> dict[str, Any]:
    req = REQ.model_copy(update={"goal": goal})
    return {
        "model": "gpt-4o-mini",
        "messages": render_messages(PromptName.intent, language="en", request=req),
        "response_format": response_format(model),
        "max_completion_tokens": 500,
    }


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # Keep-alive, like the SDK: one connection, one pid lookup.
    with httpx.Client(timeout=10.0) as client:
        yield client


def post(
    http: httpx.Client, fake: FakeLLM, payload: dict[str, Any], timeout: float = 10.0
) -> httpx.Response:
    return http.post(f"{fake.base_url}/chat/completions", json=payload, timeout=timeout)


def wait_for_pid(fake: FakeLLM, seq: int) -> int | None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        entry = next(e for e in fake.requests() if e["seq"] == seq)
        if entry["pid"] is not None:
            return int(entry["pid"])
        time.sleep(0.05)
    return None


def test_answers_in_the_openai_shape_with_usage(http: httpx.Client, fake: FakeLLM) -> None:
    response = post(http, fake, body())
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert IntentAnalysis.model_validate_json(choice["message"]["content"]).topic == "SQL"
    usage = data["usage"]
    assert usage["prompt_tokens"] > 100
    assert usage["completion_tokens"] > 10
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    models = httpx.get(f"{fake.base_url}/models").json()
    assert "gpt-4o-mini" in {m["id"] for m in models["data"]}


def test_request_log_and_reset(http: httpx.Client, fake: FakeLLM) -> None:
    post(http, fake, body())
    post(http, fake, body(model=Quiz))
    log = fake.requests()
    assert [e["schema"] for e in log] == ["IntentAnalysis", "Quiz"]
    assert log[0]["goal"] == "Learn SQL"
    assert wait_for_pid(fake, log[0]["seq"]) == os.getpid()
    assert log[0]["ts"] <= log[1]["ts"]
    assert [e["seq"] for e in fake.requests(since=1)] == [2]
    fake.reset()
    assert fake.requests() == []


def test_scripted_rules_match_schema_prompt_skip_and_times(
    http: httpx.Client, fake: FakeLLM
) -> None:
    fake.configure(
        rules=[
            {"fault": "server_error", "match_schema": "Quiz", "times": 1},
            {
                "fault": "rate_limit",
                "match_prompt": "poison",
                "skip": 1,
                "times": 2,
                "retry_after_s": 1.5,
            },
        ]
    )
    assert post(http, fake, body(model=Quiz)).status_code == 500
    assert post(http, fake, body(model=Quiz)).status_code == 200
    statuses = [post(http, fake, body(goal="Learn POISON ivy")) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 429, 429, 200]
    assert statuses[1].headers["retry-after"] == "2"
    assert statuses[1].headers["retry-after-ms"] == "1500"
    assert [e["fault"] for e in fake.requests()] == [
        "server_error",
        None,
        None,
        "rate_limit",
        "rate_limit",
        None,
    ]


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (
            "malformed",
            lambda c: c["finish_reason"] == "stop" and c["message"]["content"].endswith('"oops'),
        ),
        ("length", lambda c: c["finish_reason"] == "length"),
        ("refusal", lambda c: c["message"]["content"] is None and c["message"]["refusal"]),
        ("invalid", lambda c: "unexpected" in c["message"]["content"]),
    ],
)
def test_faults_in_200_answers(http: httpx.Client, fake: FakeLLM, fault: str, check: Any) -> None:
    fake.configure(rules=[{"fault": fault}])
    response = post(http, fake, body())
    assert response.status_code == 200
    assert check(response.json()["choices"][0])


def test_timeout_holds_until_the_client_hangs_up(http: httpx.Client, fake: FakeLLM) -> None:
    fake.configure(rules=[{"fault": "timeout"}])
    with pytest.raises(httpx.ReadTimeout):
        post(http, fake, body(), timeout=0.3)
    assert fake.requests()[0]["fault"] == "timeout"


def test_fault_rate_is_deterministic_for_a_seed(http: httpx.Client, fake: FakeLLM) -> None:
    fake.configure(fault_rate=0.5, fault_mix={"server_error": 1.0})

    def run() -> list[int]:
        return [post(http, fake, body(goal=f"Learn topic {i}")).status_code for i in range(16)]

    first = run()
    fake.reset()
    assert run() == first
    assert set(first) == {200, 500}
    fake.reset()
    fake.configure(seed=4)
    assert run() != first


def test_kill_sigkills_the_client_process(fake: FakeLLM) -> None:
    fake.configure(rules=[{"fault": "kill", "match_prompt": "poison concept", "times": None}])
    script = textwrap.dedent(
        f"""
        import json, sys, httpx
        payload = json.loads(sys.stdin.read())
        httpx.post({fake.base_url + "/chat/completions"!r}, json=payload, timeout=10)
        print("survived")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        input=httpx.Request("POST", "/", json=body(goal="Learn the poison concept")).content,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == -9
    assert b"survived" not in proc.stdout
    [entry] = fake.requests()
    assert entry["fault"] == "kill"
    assert entry["killed"] is True
    assert entry["pid"] not in (None, os.getpid())


def test_kill_never_targets_the_process_that_started_the_fake(
    http: httpx.Client, fake: FakeLLM
) -> None:
    fake.configure(rules=[{"fault": "kill"}])
    response = post(http, fake, body())
    assert response.status_code == 500
    assert fake.requests()[0]["killed"] is False


async def test_serves_many_concurrent_requests(fake: FakeLLM) -> None:
    fake.configure(latency_ms=300, jitter_ms=20)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        responses = await asyncio.gather(
            *(
                client.post(f"{fake.base_url}/chat/completions", json=body(goal=f"Learn {i}"))
                for i in range(150)
            )
        )
    assert {r.status_code for r in responses} == {200}
    # Served side by side, not one after the other.
    assert max(e["in_flight"] for e in fake.requests()) >= 50


def test_config_endpoint_validates_and_merges(fake: FakeLLM) -> None:
    updated = fake.configure(latency_ms=5, concepts=24)
    assert (updated.latency_ms, updated.concepts, updated.seed) == (5, 24, 3)
    bad = httpx.put(f"{fake.url}/_fake/config", json={"fault_rate": 3})
    assert bad.status_code == 422


def test_cli_flags() -> None:
    config, host, port = parse_args(
        [
            "--port",
            "9001",
            "--latency-ms",
            "200",
            "--jitter-ms",
            "20",
            "--fault-rate",
            "0.1",
            "--seed",
            "5",
        ]
    )
    assert (host, port) == ("127.0.0.1", 9001)
    assert (config.latency_ms, config.jitter_ms, config.fault_rate, config.seed) == (
        200,
        20,
        0.1,
        5,
    )
    config, _, _ = parse_args(["--config-json", '{"rules": [{"fault": "kill"}]}', "--seed", "2"])
    assert config.rules[0].fault == "kill"
    assert config.seed == 2


def test_a_fake_that_cannot_start_is_reported_and_stopping_leaves_no_process() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="fake LLM server failed to start"):
            start_fake_llm(port=port)
    fake = start_fake_llm()
    fake.stop()
    assert fake.process.poll() is not None


def _sse_chunks(text: str) -> list[dict[str, Any]]:
    import json

    datas = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    return [json.loads(d) for d in datas[:-1]]


def test_streams_chunks_with_usage_in_the_last_one(http: httpx.Client, fake: FakeLLM) -> None:
    chat = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a mentor.\n- Concept title: Closures"},
            {"role": "user", "content": "How do closures capture variables?"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = post(http, fake, chat)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = _sse_chunks(response.text)
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    pieces = [c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]]
    text = "".join(pieces)
    assert len([p for p in pieces if p]) > 10  # piece by piece, not one block
    assert "Closures" in text
    assert "How do closures capture variables?" in text
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    # Every chunk carries usage: null but the last, which has no choices and the usage.
    assert all(c["usage"] is None for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"]["completion_tokens"] > 10
    assert last["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    # Without include_usage no chunk has a usage field.
    plain = _sse_chunks(post(http, fake, {**chat, "stream_options": None}).text)
    assert all("usage" not in c for c in plain)
    assert plain[-1]["choices"]
    assert fake.requests()[-1]["stream"] is True


def test_a_repeated_prompt_prefix_is_reported_as_cached(http: httpx.Client, fake: FakeLLM) -> None:
    fake.configure(cache_min_tokens=64, cache_increment=16)
    system = {"role": "system", "content": "Plan of the roadmap. " * 60}  # ~300 tokens
    first = post(http, fake, {"model": "m", "messages": [system, {"role": "user", "content": "a"}]})
    assert first.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    second = post(
        http, fake, {"model": "m", "messages": [system, {"role": "user", "content": "b"}]}
    ).json()["usage"]
    cached = second["prompt_tokens_details"]["cached_tokens"]
    assert 0 < cached <= second["prompt_tokens"]
    assert cached % 16 == 0
    assert cached >= 280  # the whole system message, rounded down to the increment
    # Under the minimum prompt size nothing is cached, as with the real API.
    fake.configure(cache_min_tokens=100_000)
    third = post(http, fake, {"model": "m", "messages": [system, {"role": "user", "content": "c"}]})
    assert third.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
