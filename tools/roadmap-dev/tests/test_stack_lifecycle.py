"""`roadmap up` as a newcomer runs it (embedded servers): serve, Ctrl-C, again, down, reset."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from roadmap_client import RoadmapClient, concepts_of
from roadmap_client.models import QuizItem, TutorialItem
from roadmap_dev import credentials
from roadmap_dev.paths import find_repo_root
from roadmap_dev.testing import (
    UpProcess,
    cli_env,
    processes_mentioning,
    traversable_tmp,
    wait_dead,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with traversable_tmp() as base:
        yield base / "data"


@pytest.fixture
def ups() -> Iterator[list[UpProcess]]:
    started: list[UpProcess] = []
    yield started
    for up in started:
        up.cleanup()


def assert_nothing_left(up: UpProcess) -> None:
    assert up.seen, "no child processes were recorded"
    assert wait_dead(sorted(up.seen), timeout=10) == [], "children outlived the CLI"
    assert processes_mentioning(str(up.data_dir)) == [], "a server outlived the CLI"
    assert not (up.data_dir / "stack.json").exists()


def test_up_then_sigint_leaves_nothing_running(data_dir: Path, ups: list[UpProcess]) -> None:
    up = UpProcess(data_dir, "--port", "0", "--fake-latency", "20")
    ups.append(up)
    record = up.wait_running()
    names = {c.name for c in record.children}
    assert {"api", "worker-content", "worker-logs", "fake-llm", "web"} <= names
    assert {s.name for s in record.servers} == {"postgres", "redis"}
    recorded = {record.cli.pid, *(p.pid for p in record.processes())}
    assert recorded <= up.seen | {up.proc.pid}

    output = up.output
    creds = credentials.load(data_dir / "credentials.json")
    assert creds is not None
    assert creds.admin.password in output  # the banner shows what it created
    assert "OPENAI_API_KEY is not set" in output
    # The banner's web UI answers with its sign-in page.
    web_url = re.search(r"Web UI\s+(http://127\.0\.0\.1:\d+)", output)
    assert web_url is not None, output
    sign_in = httpx.get(f"{web_url.group(1)}/sign-in", timeout=10)
    assert sign_in.status_code == 200
    assert 'for="email">Email</label>' in sign_in.text
    assert record.api_url is not None
    with RoadmapClient(record.api_url) as client:
        client.login(creds.demo.email, creds.demo.password)
        assert client.me().email == creds.demo.email
        exercise_content_calls(client)
        key = client.create_api_key("cli test")
    assert key.key is not None
    generated = subprocess.run(
        [sys.executable, "-m", "roadmap_dev.cli", "generate", "Learn Go", "--json",
         "--api", record.api_url, "--token", key.key],
        cwd=find_repo_root(), env=cli_env(), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    assert json.loads(generated.stdout)["status"] == "completed"
    up.remember()  # the prefork pool children exist by now

    assert up.stop(signal.SIGINT) == 0
    assert_nothing_left(up)
    assert "stopped in" in up.output


def test_children_and_servers_die_when_the_cli_is_sigkilled(
    data_dir: Path, ups: list[UpProcess]
) -> None:
    up = UpProcess(data_dir, "--port", "0")
    ups.append(up)
    record = up.wait_running()
    up.remember()
    assert len(up.seen) >= 8  # servers, their helpers, API, workers and their pools, fake LLM
    up.proc.send_signal(signal.SIGKILL)
    up.proc.wait(10)
    assert wait_dead(sorted(up.seen), timeout=20) == []
    assert processes_mentioning(str(data_dir)) == []
    assert {"api", "worker-content", "worker-logs"} <= {c.name for c in record.children}


def test_a_child_dying_stops_the_whole_stack(data_dir: Path, ups: list[UpProcess]) -> None:
    up = UpProcess(data_dir, "--port", "0")
    ups.append(up)
    record = up.wait_running()
    up.remember()
    worker = next(c for c in record.children if c.name == "worker-content")
    os.kill(worker.pid, signal.SIGKILL)
    assert up.proc.wait(60) == 1
    assert wait_dead(sorted(up.seen), timeout=10) == []
    assert processes_mentioning(str(data_dir)) == []
    last = [line for line in up.output.splitlines() if line.strip()][-1]
    assert last.startswith(
        "roadmap: worker-content exited with code -9 on its own; stopped the stack"
    )


def stream_position(event_id: str | None) -> tuple[int, int]:
    assert event_id is not None
    millis, _, seq = event_id.partition("-")
    return int(millis), int(seq)


def exercise_content_calls(client: RoadmapClient) -> None:
    """The client calls that need workers: SSE with resume, content, quiz, regenerate, logs."""
    job = client.create_roadmap(goal="Learn SQL", level="beginner", weekly_hours=3, weeks=2)
    stream = client.events(job.id)
    head = [next(stream), next(stream)]
    stream.close()  # drop the connection mid-stream, then resume after the last event seen
    assert head[0].type == "snapshot"
    rest = list(client.events(job.id, last_event_id=head[-1].id))
    assert rest[-1].type == "completed"
    positions = [stream_position(e.id) for e in [*head[1:], *rest] if e.type != "snapshot"]
    assert positions == sorted(set(positions)), "events repeated or out of order after resume"
    assert any(e.type == "item" for e in rest)

    finished = client.get_roadmap(job.id)
    assert finished.status == "completed"
    concept = concepts_of(finished)[0]
    detail = client.get_concept(job.id, concept.id)
    tutorial = detail.content["tutorial"]
    assert isinstance(tutorial, TutorialItem)
    assert tutorial.result is not None
    assert tutorial.result.body.markdown
    quiz = detail.content["quiz"]
    assert isinstance(quiz, QuizItem)
    assert quiz.result is not None
    questions = quiz.result.body.questions
    first_try = client.quiz_attempt(job.id, concept.id, [0] * len(questions))
    assert first_try.total == len(questions)
    # The attempt tells the correct options: answering with them scores full marks.
    result = client.quiz_attempt(
        job.id, concept.id, [r.correct_options for r in first_try.results], quiz_version=1
    )
    assert result.score == 1.0
    assert result.correct == result.total == len(questions)
    assert [a.id for a in client.quiz_attempts(job.id, concept.id).items] == [
        result.id,
        first_try.id,
    ]
    assert client.set_progress(job.id, concept.id, "done").completed
    assert client.get_roadmap(job.id).learning.done == 1

    regen = client.regenerate(job.id, concept.id, ["tutorial"], "shorter, with one example")
    assert regen.kinds == ["tutorial"]
    assert client.wait(job.id, max_wait=120).status == "completed"
    again = client.get_concept(job.id, concept.id)
    assert again.content["tutorial"].version == 2
    assert again.content["tutorial"].versions == [1, 2]
    assert again.content["quiz"].version == 1
    first = client.get_concept(job.id, concept.id, version=1).content["tutorial"]
    assert isinstance(first, TutorialItem)
    assert first.result is not None
    assert first.result.body == tutorial.result.body
    assert client.count_logs(job.id) > 0
    first_logs = client.logs(job.id, limit=5)
    assert first_logs.items[0].message
    assert first_logs.items[0].ts is not None


def test_second_up_reuses_data_and_down_stops_it(data_dir: Path, ups: list[UpProcess]) -> None:
    first = UpProcess(data_dir, "--port", "0", "--fake-latency", "0")
    ups.append(first)
    record = first.wait_running()
    creds = credentials.load(data_dir / "credentials.json")
    assert creds is not None
    assert record.api_url is not None
    with RoadmapClient(record.api_url) as client:
        client.login(creds.demo.email, creds.demo.password)
        job = client.create_roadmap(goal="Learn Rust", level="beginner", weekly_hours=3, weeks=2)
    assert first.stop(signal.SIGTERM) == 0
    assert_nothing_left(first)

    second = UpProcess(data_dir, "--port", "0", "--fake-latency", "0")
    ups.append(second)
    record = second.wait_running()
    assert credentials.load(data_dir / "credentials.json") == creds
    assert creds.demo.password in second.output
    assert record.api_url is not None
    with RoadmapClient(record.api_url) as client:
        client.login(creds.demo.email, creds.demo.password)  # same account, same data
        assert [item.id for item in client.list_roadmaps().items] == [job.id]

    down = subprocess.run(
        [sys.executable, "-m", "roadmap_dev.cli", "down", "--data-dir", str(data_dir)],
        cwd=find_repo_root(),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert down.returncode == 0, down.stderr
    assert "stopped: roadmap CLI" in down.stderr
    assert second.proc.wait(30) == 0
    second.stop()
    assert_nothing_left(second)

    reset = subprocess.run(
        [sys.executable, "-m", "roadmap_dev.cli", "reset", "--data-dir", str(data_dir)],
        cwd=find_repo_root(),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert reset.returncode == 0, reset.stderr
    assert not data_dir.exists()
