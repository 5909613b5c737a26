"""An OpenAI-compatible chat-completions server answering our structured outputs.

``POST /v1/chat/completions`` detects the requested schema
(``response_format.json_schema.name``), reads a few facts from the prompt (goal,
language, hour budget, limits, concept title) and answers with a schema-valid,
plausible instance, deterministic for ``(seed, prompt)``, with a realistic
``usage``. Latency and faults are configurable (see :class:`FakeConfig`); every
request is logged for tests (``GET /_fake/requests``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import random
import signal
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from roadmap_dev import fake_search
from roadmap_dev.fake_llm import generate
from roadmap_dev.fake_llm.clientpid import PidResolver
from roadmap_dev.fake_llm.config import FakeConfig, FaultKind, FaultRule
from roadmap_dev.fake_llm.prompt import PromptFacts, parse_prompt
from roadmap_dev.fake_llm.tokens import count_tokens

MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "fake-model")
# Message prefixes remembered for prompt caching (oldest forgotten first).
MAX_CACHED_PREFIXES = 50_000


class FakeState:
    def __init__(self, config: FakeConfig) -> None:
        self.lock = asyncio.Lock()
        self.configure(config)
        self.log: deque[dict[str, Any]] = deque(maxlen=config.max_log)
        self.seq = 0
        self.seen: Counter[str] = Counter()
        self.pids = PidResolver()
        self.in_flight = 0
        self.prefixes: OrderedDict[str, None] = OrderedDict()

    def configure(self, config: FakeConfig) -> None:
        self.config = config
        self.rule_hits = [0] * len(config.rules)
        self.latency_rng = random.Random(config.seed)  # noqa: S311 - fake latency

    def cached_tokens(self, messages: list[Any], prompt_tokens: int) -> int:
        """Tokens of the longest run of leading messages sent before (then remembered)."""
        prefix_tokens = 0
        cached = 0
        digest = hashlib.sha256()
        for message in messages:
            digest.update(json.dumps(message, sort_keys=True, ensure_ascii=False).encode())
            key = digest.hexdigest()
            content = message.get("content") if isinstance(message, dict) else None
            prefix_tokens += count_tokens(content if isinstance(content, str) else "")
            if key in self.prefixes:
                self.prefixes.move_to_end(key)
                cached = prefix_tokens
            else:
                self.prefixes[key] = None
                if len(self.prefixes) > MAX_CACHED_PREFIXES:
                    self.prefixes.popitem(last=False)
        config = self.config
        if prompt_tokens < config.cache_min_tokens:
            return 0
        return min(prompt_tokens, cached - cached % config.cache_increment)

    def reset(self) -> None:
        self.prefixes.clear()
        self.log.clear()
        self.seq = 0
        self.seen.clear()
        self.rule_hits = [0] * len(self.config.rules)
        self.latency_rng = random.Random(self.config.seed)  # noqa: S311

    def pick_fault(self, schema: str | None, facts: PromptFacts) -> tuple[FaultKind | None, float]:
        """The scripted rule that fires for this request, else a rate-based draw."""
        config = self.config
        text = facts.text.casefold()
        for i, rule in enumerate(config.rules):
            if rule.match_schema is not None and rule.match_schema != schema:
                continue
            if rule.match_prompt is not None and rule.match_prompt.casefold() not in text:
                continue
            self.rule_hits[i] += 1
            fired = self.rule_hits[i] - rule.skip
            if fired <= 0 or (rule.times is not None and fired > rule.times):
                continue
            return rule.fault, _retry_after(rule, config)
        if config.fault_rate > 0:
            occurrence = self.seen[facts.digest]
            rng = generate.rng_for(config.seed, "fault", facts.digest, occurrence)
            if rng.random() < config.fault_rate:
                kinds = [k for k, w in config.fault_mix.items() if w > 0]
                if kinds:
                    weights = [config.fault_mix[k] for k in kinds]
                    return rng.choices(kinds, weights)[0], config.retry_after_s
        return None, config.retry_after_s


def _retry_after(rule: FaultRule, config: FakeConfig) -> float:
    return config.retry_after_s if rule.retry_after_s is None else rule.retry_after_s


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def create_app(config: FakeConfig | None = None) -> FastAPI:
    state = FakeState(config or FakeConfig())
    app = FastAPI(title="fake-llm", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fake = state
    # The dev stack's and tests' web search and result pages (SEARCH_BASE_URL).
    app.mount(fake_search.MOUNT_PATH, fake_search.create_app())

    @app.get("/_fake/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "pid": os.getpid()}

    @app.get("/_fake/requests")
    async def requests_log(since: int = 0) -> dict[str, Any]:
        return {"requests": [e for e in state.log if e["seq"] > since]}

    @app.post("/_fake/reset")
    async def reset() -> dict[str, Any]:
        state.reset()
        return {"ok": True}

    @app.get("/_fake/config")
    async def get_config() -> dict[str, Any]:
        return state.config.model_dump(mode="json")

    @app.put("/_fake/config")
    async def put_config(request: Request) -> Response:
        changes = await request.json()
        if not isinstance(changes, dict):
            return JSONResponse({"detail": "expected a JSON object"}, status_code=422)
        try:
            merged = FakeConfig.model_validate({**state.config.model_dump(mode="json"), **changes})
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        state.configure(merged)
        return JSONResponse(merged.model_dump(mode="json"))

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        now = int(time.time())
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": now, "owned_by": "fake"} for m in MODELS
            ],
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        state.in_flight += 1
        try:
            return await _complete(state, request)
        finally:
            state.in_flight -= 1

    return app


async def _complete(state: FakeState, request: Request) -> Response:
    arrived = time.time()
    # The configured latency runs from arrival, the fake's own work (reading the body,
    # generating the answer, counting tokens) included, as a provider's latency does; added
    # after that work it made 16 calls at once take 220 ms instead of 200.
    started = time.monotonic()
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse(_error("body is not JSON", "invalid_request_error"), 400)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return JSONResponse(_error("messages is required", "invalid_request_error"), 400)
    config = state.config
    facts = parse_prompt(body["messages"])
    schema = generate.detect_schema(body.get("response_format"))
    fault, retry_after = state.pick_fault(schema, facts)
    occurrence = state.seen[facts.digest]
    state.seen[facts.digest] += 1
    state.seq += 1
    seq = state.seq
    model = str(body.get("model") or "fake-model")
    max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 4096)
    client, server = request.client, request.scope.get("server")
    peer = (client.host, client.port) if client is not None else None
    server_port = int(server[1]) if server else 0
    pid = None
    if fault is FaultKind.kill and peer is not None:
        pid = await state.pids.resolve(peer, server_port)
    entry: dict[str, Any] = {
        "seq": seq,
        "ts": arrived,
        "schema": schema,
        "model": model,
        "digest": facts.digest,
        "occurrence": occurrence,
        "goal": facts.goal,
        "language": facts.language,
        "concept": facts.concept_title,
        "concept_id": facts.concept_id,
        "messages": len(body["messages"]),
        "fault": fault.value if fault else None,
        "status": 200,
        "pid": pid,
        "retry_count": int(request.headers.get("x-stainless-retry-count", "0") or 0),
        # Requests being served when this one arrived, itself included.
        "in_flight": state.in_flight,
    }
    state.log.append(entry)
    if pid is None and peer is not None and config.track_client_pid:
        state.pids.note(peer, server_port, entry)

    rng = generate.rng_for(config.seed, facts.digest)
    # Every message counts, the system prompt included, as the real API counts them.
    prompt_tokens = sum(
        count_tokens(m["content"])
        for m in body["messages"]
        if isinstance(m, dict) and isinstance(m.get("content"), str)
    ) + count_tokens(json.dumps(body.get("response_format") or {}, ensure_ascii=False))

    if fault is FaultKind.rate_limit:
        entry["status"] = 429
        return JSONResponse(
            _error("Rate limit reached for requests (fake)", "requests", "rate_limit_exceeded"),
            status_code=429,
            headers={
                "retry-after": str(max(0, math.ceil(retry_after))),
                "retry-after-ms": str(round(retry_after * 1000)),
                "x-request-id": f"req_fake_{seq}",
            },
        )
    if fault is FaultKind.server_error:
        entry["status"] = 500
        return JSONResponse(
            _error("The server had an error (fake)", "server_error"),
            status_code=500,
            headers={"x-request-id": f"req_fake_{seq}"},
        )
    if fault is FaultKind.kill:
        killed = _kill(pid)
        entry["killed"] = killed
        entry["status"] = 500
        return JSONResponse(_error("client killed (fake)", "server_error"), status_code=500)
    if fault is FaultKind.timeout:
        entry["status"] = 0
        await _hold(request, config.timeout_s)
        return JSONResponse(_error("held until the client gave up", "timeout"), status_code=504)

    finish_reason = "stop"
    refusal: str | None = None
    content: str | None
    if schema is None:
        question = next(
            (
                str(m.get("content") or "")
                for m in reversed(body["messages"])
                if isinstance(m, dict) and m.get("role") == "user"
            ),
            "",
        )
        # Our prompts quote the learner's words ("> "): the reply quotes the words.
        question = "\n".join(line.removeprefix(">").strip() for line in question.splitlines())
        content = generate.chat_reply(facts, question, rng)
    elif fault is FaultKind.refusal:
        content = None
        refusal = "I'm sorry, but I can't help with that request."
    else:
        if fault is FaultKind.invalid:
            data = (
                generate.invalid_framework(facts, rng, config.concepts)
                if schema == "Framework"
                else generate.invalid_instance(schema)
            )
        else:
            data = generate.generate(schema, facts, rng, config.concepts)
            if schema == "Tutorial" and config.hostile_markdown:
                data["markdown"] += "\n\n" + generate.HOSTILE_MARKDOWN
        content = json.dumps(data, ensure_ascii=False)
        if fault is FaultKind.malformed:
            content = content[: max(1, len(content) // 3)] + ' "oops'
        elif fault is FaultKind.length:
            content = content[: max(1, len(content) // 2)]
            finish_reason = "length"
    completion_tokens = count_tokens(content or refusal or "")
    if fault is FaultKind.length:
        completion_tokens = max_tokens

    cached_tokens = state.cached_tokens(body["messages"], prompt_tokens)
    entry["prompt_tokens"] = prompt_tokens
    entry["completion_tokens"] = completion_tokens
    entry["cached_tokens"] = cached_tokens
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }
    if body.get("stream") is True:
        entry["stream"] = True
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        chunks = _stream_chunks(
            state,
            config,
            seq=seq,
            created=int(arrived),
            model=model,
            content=content,
            refusal=refusal,
            finish_reason=finish_reason,
            usage=usage if include_usage else None,
            started=started,
        )
        return StreamingResponse(
            chunks,
            media_type="text/event-stream",
            headers={"x-request-id": f"req_fake_{seq}", "cache-control": "no-cache"},
        )
    # Rendered before the wait: when many answers fall due together, each then only has
    # to be written.
    response = JSONResponse(
        {
            "id": f"chatcmpl-fake-{seq}",
            "object": "chat.completion",
            "created": int(arrived),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": usage,
        },
        headers={"x-request-id": f"req_fake_{seq}"},
    )
    delay = _latency(state, config, completion_tokens) - (time.monotonic() - started)
    if delay > 0:
        await asyncio.sleep(delay)
    return response


def _pieces(text: str) -> list[str]:
    """The text cut into word-sized pieces (each with the spaces that follow it), the
    way a model's tokens arrive."""
    pieces: list[str] = []
    start = 0
    for i in range(1, len(text)):
        if (text[i - 1].isspace() and not text[i].isspace()) or (
            not text[i].isascii() and not text[i].isspace()
        ):
            pieces.append(text[start:i])
            start = i
    if start < len(text):
        pieces.append(text[start:])
    return [p for p in pieces if p]


async def _stream_chunks(
    state: FakeState,
    config: FakeConfig,
    *,
    seq: int,
    created: int,
    model: str,
    content: str | None,
    refusal: str | None,
    finish_reason: str,
    usage: dict[str, Any] | None,
    started: float,
) -> AsyncIterator[bytes]:
    """``chat.completion.chunk`` events like the real API's stream: the role first, then
    the content piece by piece, then the finish reason, then (when asked) the usage in a
    chunk without choices; every chunk has ``usage: null`` when usage was asked for."""
    base: dict[str, Any] = {
        "id": f"chatcmpl-fake-{seq}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            **base,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if usage is not None:
            data["usage"] = usage if delta is None else None
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

    jitter = (
        state.latency_rng.uniform(-config.jitter_ms, config.jitter_ms) if config.jitter_ms else 0
    )
    first_token_s = max(0.0, config.latency_ms + jitter) / 1000.0 - (time.monotonic() - started)
    yield chunk({"role": "assistant", "content": "", "refusal": None})
    if first_token_s > 0:
        await asyncio.sleep(first_token_s)
    if refusal is not None:
        yield chunk({"refusal": refusal})
    pieces = _pieces(content or "")
    per_piece = 0.0
    if config.tokens_per_s and pieces:
        per_piece = count_tokens(content or "") / config.tokens_per_s / len(pieces)
    for i, piece in enumerate(pieces):
        if i and per_piece > 0:
            await asyncio.sleep(per_piece)
        yield chunk({"content": piece})
    yield chunk({}, finish_reason)
    if usage is not None:
        yield chunk(None)
    yield b"data: [DONE]\n\n"


def _latency(state: FakeState, config: FakeConfig, completion_tokens: int) -> float:
    jitter = (
        state.latency_rng.uniform(-config.jitter_ms, config.jitter_ms) if config.jitter_ms else 0
    )
    delay = max(0.0, config.latency_ms + jitter) / 1000.0
    if config.tokens_per_s:
        delay += completion_tokens / config.tokens_per_s
    return delay


async def _hold(request: Request, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _kill(pid: int | None) -> bool:
    # Never the fake itself, its parent (the test runner that started it) or init.
    if pid is None or pid in (os.getpid(), os.getppid(), 0, 1):
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def serve(config: FakeConfig | None = None, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the fake in the foreground until SIGINT/SIGTERM."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            backlog=4096,
            timeout_keep_alive=30,
            # Held "timeout" requests must not keep a stopping fake alive.
            timeout_graceful_shutdown=2,
        )
    )
    server.run()
