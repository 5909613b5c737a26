"""Benchmark 11 — the web UI: server render time per page, JavaScript per page, idle memory.

Render time is the web service's own work for one page: the request through Starlette,
the API answers parsed into the client's models, Markdown rendered and sanitized, the
template rendered. The API is replaced by canned answers (recorded shapes of a
100-concept roadmap) served in-process, so the figure is the UI's cost, not the API's
(the API has its own benchmarks). Each page is requested sequentially, ``n`` times after
a warm-up; p95 per page. JavaScript: the bytes of the script files each page loads.
Idle memory: the RSS of a ``uvicorn roadmap_web.app:app`` process (as its image runs it),
a few seconds after it answered ``/readyz``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.lib.context import Context
from bench.lib.results import BenchResult, at_most
from roadmap_dev.stack import die_with_parent
from roadmap_web.app import STATIC, create_app
from roadmap_web.settings import WebSettings

TITLE = "Web UI: page render time, JavaScript, idle memory"
CONCEPTS = 100
RENDER_P95_MS = 50.0
JS_KB = 50.0
IDLE_RSS_MIB = 80.0
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC).isoformat()
JOB = uuid.UUID(int=1)
TUTORIAL = "\n\n".join(
    [f"## Part {i}\n\nSome **text** with `code` and a [link](https://example.com/{i}).\n\n"
     f"- point one\n- point two\n\n```python\nprint({i})\n```" for i in range(12)]
)  # fmt: skip


def _usage() -> dict[str, Any]:
    return {"prompt_tokens": 123456, "completion_tokens": 65432, "cost_usd": 1.23, "llm_calls": 301}


def _item(kind: str, result: dict[str, Any] | None) -> dict[str, Any]:
    return {"status": "succeeded", "version": 1, "versions": [1], "error": None, "kind": kind,
            "result": result}  # fmt: skip


def _version(body: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "model": "fake", "instructions": None, "created_at": NOW, "body": body}


def _concept_node(i: int) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=1000 + i)), "key": f"concept-{i}", "title": f"Concept {i}",
        "summary": "A concept of the benchmark roadmap.", "difficulty": 2, "estimated_hours": 3.0,
        "prerequisites": [], "progress": "in_progress" if i % 3 else "done",
        "completed": i % 3 == 0, "quiz_attempts": 1, "best_quiz_score": 0.75,
        "content": {k: {"status": "succeeded", "version": 1, "error": None}
                    for k in ("tutorial", "resources", "quiz")},
    }  # fmt: skip


def _roadmap(status: str) -> dict[str, Any]:
    per_module = 5
    modules = [
        {"id": str(uuid.UUID(int=500 + m)), "title": f"Module {m}", "description": "A module.",
         "concepts": [_concept_node(m * per_module + c) for c in range(per_module)]}
        for m in range(CONCEPTS // per_module)
    ]  # fmt: skip
    stages = [
        {"id": str(uuid.UUID(int=100 + s)), "title": f"Stage {s}", "description": "A stage.",
         "modules": modules[s * 5 : (s + 1) * 5]}
        for s in range(len(modules) // 5)
    ]  # fmt: skip
    progress = {"total": 3 * CONCEPTS, "done": 3 * CONCEPTS, "failed": 0, "pending": 0,
                "cancelled": 0}  # fmt: skip
    return {
        "id": str(JOB), "status": status,
        "current_step": "awaiting_review" if status == "awaiting_review" else "done",
        "title": "A hundred concepts", "goal": "Learn everything", "progress": progress,
        "created_at": NOW, "updated_at": NOW,
        "links": {"self": "/x", "events": "/x/events", "logs": "/x/logs"},
        "summary": "A big roadmap.", "error": None,
        "request": {"goal": "Learn everything", "level": "beginner", "weekly_hours": 10,
                    "weeks": 20},
        "usage": _usage(), "started_at": NOW, "finished_at": NOW,
        "review": {"round": 2, "decision": "approved", "feedback": "More practice",
                   "created_at": NOW, "decided_at": NOW},
        "framework": {"title": "A hundred concepts", "summary": "All of it.", "stages": stages},
        "learning": {"concepts": CONCEPTS, "done": 34, "in_progress": 66, "completion": 0.34,
                     "quizzes_attempted": 100, "average_best_score": 0.75},
    }  # fmt: skip


def _concept() -> dict[str, Any]:
    node = _concept_node(7)
    questions = [
        {"id": f"q{i}", "type": "single_choice", "prompt": f"Question {i}?",
         "options": ["one", "two", "three", "four"]}
        for i in range(5)
    ]  # fmt: skip
    resources = [
        {"title": f"Resource {i}", "url": f"https://example.com/r/{i}", "type": "article",
         "description": "Worth reading."}
        for i in range(6)
    ]  # fmt: skip
    return {
        **node, "roadmap_id": str(JOB),
        "content": {
            "tutorial": _item("tutorial", _version(
                {"title": "Concept 7", "markdown": TUTORIAL, "estimated_minutes": 45})),
            "resources": _item("resources", _version({"resources": resources})),
            "quiz": _item("quiz", _version({"questions": questions})),
        },
    }  # fmt: skip


def _attempt() -> dict[str, Any]:
    results = [
        {"question_id": f"q{i}", "chosen": [0], "correct": i % 2 == 0, "correct_options": [0],
         "explanation": "Because."}
        for i in range(5)
    ]  # fmt: skip
    return {"id": str(uuid.UUID(int=9)), "concept_id": str(uuid.UUID(int=1007)),
            "quiz_version": 1, "score": 0.6, "correct": 3, "total": 5, "results": results,
            "created_at": NOW}  # fmt: skip


def _logs() -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"event_id": str(uuid.UUID(int=20000 + i)), "ts": NOW, "level": "info",
         "category": "content" if i % 4 else "review", "step": "content_generation",
         "message": f"tutorial written for concept {i}", "concept_id": None,
         "duration_ms": 812.0, "details": {}}
        for i in range(100)
    ]  # fmt: skip
    return {"items": items, "next_cursor": None}


def _chat() -> dict[str, Any]:
    items = [
        {"id": str(uuid.UUID(int=30000 + i)), "role": "user" if i % 2 == 0 else "assistant",
         "status": "done", "content": "How do joins work?" if i % 2 == 0 else TUTORIAL[:600],
         "concept_id": str(uuid.UUID(int=1007)), "reply_to": None, "error": None,
         "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "created_at": NOW,
         "completed_at": NOW}
        for i in range(10)
    ]  # fmt: skip
    return {"items": items, "has_more": False}


def _summaries() -> dict[str, Any]:
    detail = _roadmap("completed")
    keys = ("id", "status", "current_step", "title", "goal", "progress", "created_at",
            "updated_at", "links")  # fmt: skip
    return {"items": [{k: detail[k] for k in keys} for _ in range(20)], "next_cursor": "abc"}


def canned_api() -> httpx.MockTransport:
    """The API's answers for the pages below (what a 100-concept roadmap returns)."""
    completed, review = _roadmap("completed"), _roadmap("awaiting_review")
    answers: list[tuple[str, str, Callable[[httpx.Request], dict[str, Any]]]] = [
        ("GET", r"/api/v1/roadmaps", lambda r: _summaries()),
        ("GET", rf"/api/v1/roadmaps/{JOB}/concepts/[^/]+/quiz/attempts",
         lambda r: {"items": [_attempt()], "next_cursor": None}),
        ("POST", rf"/api/v1/roadmaps/{JOB}/concepts/[^/]+/quiz/attempts", lambda r: _attempt()),
        ("GET", rf"/api/v1/roadmaps/{JOB}/concepts/[^/]+", lambda r: _concept()),
        ("GET", r"/api/v1/roadmaps/[^/]+/logs", lambda r: _logs()),
        ("GET", r"/api/v1/roadmaps/[^/]+/chat/messages", lambda r: _chat()),
        ("GET", rf"/api/v1/roadmaps/{uuid.UUID(int=2)}", lambda r: review),
        ("GET", rf"/api/v1/roadmaps/{JOB}", lambda r: completed),
    ]  # fmt: skip

    def handle(request: httpx.Request) -> httpx.Response:
        for method, pattern, answer in answers:
            if request.method == method and re.fullmatch(pattern, request.url.path):
                status = 201 if method == "POST" else 200
                return httpx.Response(status, json=answer(request))
        return httpx.Response(404, json={"title": "Not Found", "status": 404})

    return httpx.MockTransport(handle)


CONCEPT_PATH = f"/roadmaps/{JOB}/concepts/{uuid.UUID(int=1007)}"
PAGES: dict[str, tuple[str, str]] = {
    "sign_in": ("GET", "/sign-in"),
    "my_roadmaps": ("GET", "/roadmaps"),
    "new_roadmap": ("GET", "/roadmaps/new"),
    "roadmap": ("GET", f"/roadmaps/{JOB}"),
    "review": ("GET", f"/roadmaps/{uuid.UUID(int=2)}"),
    "concept": ("GET", CONCEPT_PATH),
    "quiz_result": ("POST", f"{CONCEPT_PATH}/quiz"),
    "log": ("GET", f"/roadmaps/{JOB}/log"),
}


async def _render_times(n: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    app = create_app(WebSettings(api_url="http://api.bench"), transport=canned_api())
    times: dict[str, list[float]] = {}
    js: dict[str, int] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://web.bench"
    ) as client:
        client.cookies.set("rw_session", "bench-token")
        form = (await client.get("/roadmaps/new")).text
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form)
        assert token is not None
        quiz = {"csrf_token": token.group(1), **{f"q{i}": "0" for i in range(5)}}
        for name, (method, path) in PAGES.items():
            samples = []
            for i in range(n + 5):  # five warm-up requests
                started = time.perf_counter()
                if method == "POST":
                    answer = await client.post(path, data=quiz)
                else:
                    answer = await client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if answer.status_code != 200:
                    raise RuntimeError(f"{name}: {path} answered {answer.status_code}")
                if i >= 5:
                    samples.append(elapsed)
            times[name] = samples
            scripts = re.findall(r'<script src="/static/([^"]+)"', answer.text)
            js[name] = sum((STATIC / s).stat().st_size for s in scripts)
    return times, js


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _idle_rss_mib(settle_s: float, log: Path) -> float:
    port = _free_port()
    env = {**os.environ, "APP_ENV": "development", "API_URL": "http://127.0.0.1:9"}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "roadmap_web.app:app", "--host", "127.0.0.1",
             "--port", str(port), "--no-access-log"],
            env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent(),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the web service did not start (see {log})")
            time.sleep(0.1)
        time.sleep(settle_s)
        return float(psutil.Process(proc.pid).memory_info().rss) / (1024 * 1024)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(ctx: Context) -> dict[str, Any]:
    n = int(ctx.scale(200, 20))
    settle_s = ctx.scale(3, 1)
    result = BenchResult(TITLE)
    result.settings = {
        "roadmap": f"{CONCEPTS} concepts (20 modules in 4 stages); concept page: a 12-section "
        "tutorial, 6 resources, 5 questions, 10 chat messages; log page: 100 entries; "
        "list: 20 roadmaps",
        "render": f"{n} sequential requests per page after 5 warm-up, in-process (ASGI), "
        "the API replaced by canned answers",
        "idle": f"RSS of one `uvicorn roadmap_web.app:app` process {settle_s:g} s after ready",
        "repeats": str(ctx.repeat),
    }
    runs: list[dict[str, float]] = []
    js: dict[str, int] = {}
    idle: list[float] = []
    for i in range(ctx.repeat):
        times, js = asyncio.run(_render_times(n))
        runs.append({page: _p95(samples) for page, samples in times.items()})
        idle.append(_idle_rss_mib(settle_s, ctx.workdir / f"web-{i + 1}.log"))
    for page in PAGES:
        values = [r[page] for r in runs]
        result.figure(
            f"{page}: server render p95", "ms", values, "{:.1f}",
            key=f"web_render_p95_ms_{page}", goal=f"<= {RENDER_P95_MS:g} ms",
            passed=at_most(values, RENDER_P95_MS),
        )  # fmt: skip
    worst = max(js.values(), default=0) / 1024
    result.figure(
        "JavaScript on the heaviest page", "KB", [worst], "{:.1f}", key="web_js_kb_max",
        goal=f"<= {JS_KB:g} KB", passed=at_most([worst], JS_KB),
    )  # fmt: skip
    result.figure(
        "web service idle RSS", "MiB", idle, "{:.0f}", key="web_idle_rss_mib",
        goal=f"< {IDLE_RSS_MIB:g} MiB", passed=at_most(idle, IDLE_RSS_MIB - 1e-9),
    )  # fmt: skip
    slowest = max((max(r.values()) for r in runs), default=float("nan"))
    result.target(
        "every page renders in <= 50 ms p95 (100-concept roadmap)", f"<= {RENDER_P95_MS:g} ms",
        f"slowest page p95 {slowest:.1f} ms", at_most([slowest], RENDER_P95_MS),
    )  # fmt: skip
    result.target(
        "a page ships <= 50 KB of JavaScript", f"<= {JS_KB:g} KB", f"{worst:.1f} KB",
        at_most([worst], JS_KB),
    )  # fmt: skip
    result.target(
        "the web service idles under 80 MiB", f"< {IDLE_RSS_MIB:g} MiB",
        f"{max(idle):.0f} MiB", at_most([max(idle)], IDLE_RSS_MIB - 1e-9),
    )  # fmt: skip
    result.raw = {"p95_ms": runs, "js_bytes": js, "idle_rss_mib": idle}
    return result.as_dict()
