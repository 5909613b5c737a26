"""Load generators: open-loop (latency) and closed-loop (throughput) in asyncio + httpx, and wrk.

Open loop: request i is *scheduled* at `t0 + i / rate` whatever happened before, and its
latency is measured from that scheduled time. A server (or a client) that falls behind
therefore shows up in the latency instead of silently lowering the offered rate
(no coordinated omission). Every run is bounded by a request count and a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.lib.stats import latency_summary

# Keeps the generator's own pool from becoming the bottleneck at a few hundred req/s.
_MAX_CONNECTIONS = 1024


@dataclass
class Request:
    method: str
    url: str
    json_body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LoadResult:
    """What one load run saw. Latencies are of successful (2xx) responses only."""

    offered_rate: float | None
    sent: int
    ok: int
    elapsed_s: float
    latencies_ms: list[float]
    statuses: Counter[str]

    @property
    def errors(self) -> int:
        return self.sent - self.ok

    @property
    def error_rate(self) -> float:
        return self.errors / self.sent if self.sent else math.nan

    @property
    def achieved_rate(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else math.nan

    def summary(self) -> dict[str, float]:
        out = latency_summary(self.latencies_ms)
        out.update(
            sent=float(self.sent),
            ok=float(self.ok),
            error_rate=self.error_rate,
            achieved_rps=self.achieved_rate,
        )
        if self.offered_rate is not None:
            out["offered_rps"] = self.offered_rate
        return out


def _client(timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(max_connections=_MAX_CONNECTIONS, max_keepalive_connections=256),
        trust_env=False,  # loopback only: no proxy from the environment
    )


async def _one(
    client: httpx.AsyncClient, request: Request, start: float, result: LoadResult
) -> None:
    try:
        response = await client.request(
            request.method, request.url, json=request.json_body, headers=dict(request.headers)
        )
        await response.aread()
    except httpx.TimeoutException:
        result.statuses["timeout"] += 1
        return
    except httpx.HTTPError as exc:
        result.statuses[type(exc).__name__] += 1
        return
    done = time.perf_counter()
    result.statuses[str(response.status_code)] += 1
    if 200 <= response.status_code < 300:
        result.ok += 1
        result.latencies_ms.append((done - start) * 1000)


async def open_loop(
    make_request: Callable[[int], Request],
    *,
    rate: float,
    duration_s: float,
    timeout_s: float = 10.0,
    warmup_s: float = 0.0,
    until: Callable[[], bool] | None = None,
) -> LoadResult:
    """Offer `rate` req/s for `duration_s` (after an unrecorded warm-up); wait for stragglers.

    `until`, checked before each send, ends the run early once it returns True.
    """
    async with _client(timeout_s) as client:
        if warmup_s > 0:
            await _schedule(client, make_request, rate, warmup_s, timeout_s, None)
        return await _schedule(client, make_request, rate, duration_s, timeout_s, until)


async def _schedule(
    client: httpx.AsyncClient,
    make_request: Callable[[int], Request],
    rate: float,
    duration_s: float,
    timeout_s: float,
    until: Callable[[], bool] | None,
) -> LoadResult:
    total = max(1, round(rate * duration_s))
    result = LoadResult(rate, 0, 0, 0.0, [], Counter())
    tasks: set[asyncio.Task[None]] = set()
    t0 = time.perf_counter() + 0.05
    for i in range(total):
        if until is not None and i > 0 and until():
            break
        result.sent += 1
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_one(client, make_request(i), scheduled, result))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s + 5)
    if tasks:
        result.statuses["unfinished"] += len(tasks)
    for task in list(tasks):
        task.cancel()
    # At least the scheduled window: with few requests, the time to the last answer alone
    # would make the rate look higher than what was offered.
    result.elapsed_s = max(result.sent / rate, time.perf_counter() - t0)
    return result


async def closed_loop(
    make_request: Callable[[int], Request],
    *,
    concurrency: int,
    duration_s: float,
    timeout_s: float = 60.0,
) -> LoadResult:
    """`concurrency` clients sending back to back for `duration_s`; in-flight ones are awaited.

    The rate is completions over the time until the last one finished, so long requests
    (the baseline's) are counted, not cut off.
    """
    result = LoadResult(None, 0, 0, 0.0, [], Counter())
    counter = iter(range(10**9))
    t0 = time.perf_counter()
    stop_at = t0 + duration_s

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop_at:
            result.sent += 1
            await _one(client, make_request(next(counter)), time.perf_counter(), result)

    async with _client(timeout_s) as client:
        await asyncio.wait_for(
            asyncio.gather(*(client_loop(client) for _ in range(concurrency))),
            timeout=duration_s + timeout_s + 5,
        )
    result.elapsed_s = time.perf_counter() - t0
    return result


# --- wrk -----------------------------------------------------------------------------------


def ensure_wrk() -> tuple[str | None, str]:
    """Path of `wrk`, installing Debian's package when we may; else None and why."""
    found = shutil.which("wrk")
    if found is not None:
        return found, "wrk found on PATH"
    apt = shutil.which("apt-get")
    if apt is None:
        return None, "wrk missing and no apt-get here"
    import os

    if os.geteuid() != 0:
        return None, "wrk missing and not root (install it with `apt-get install -y wrk`)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in (["install", "-y", "wrk"], ["update"], ["install", "-y", "wrk"]):
        done = subprocess.run(
            [apt, "-q", *attempt], capture_output=True, text=True, timeout=300, check=False, env=env
        )
        if attempt[0] == "install" and done.returncode == 0:
            break
    found = shutil.which("wrk")
    if found is None:
        return None, "`apt-get install -y wrk` failed"
    return found, "wrk installed by the runner (apt-get install -y wrk)"


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    requests_per_s: float
    non_2xx: int
    socket_errors: int
    latency_ms: dict[str, float]

    @property
    def ok_per_s(self) -> float:
        good = self.requests - self.non_2xx
        return good / self.duration_s if self.duration_s > 0 else math.nan

    def summary(self) -> dict[str, float]:
        return {
            "rps": self.requests_per_s,
            "ok_rps": self.ok_per_s,
            "requests": float(self.requests),
            "non_2xx": float(self.non_2xx),
            "socket_errors": float(self.socket_errors),
            **{f"{k}_ms": v for k, v in self.latency_ms.items()},
        }


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        return math.nan
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def _lua_string(value: str) -> str:
    """A Lua long-bracket literal: raw bytes, no escapes to get wrong (e.g. JSON's \\uXXXX)."""
    level = 0
    while f"]{'=' * level}]" in value:
        level += 1
    eq = "=" * level
    # A newline right after the opening bracket is skipped by Lua, so one is always added.
    return f"[{eq}[\n{value}]{eq}]"


def parse_wrk(output: str) -> WrkResult:
    requests_match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if requests_match is None or rps_match is None:
        raise RuntimeError(f"could not read wrk's output: {output[-500:]!r}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    latency = {
        f"p{q}": _to_ms(value)
        for q, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, flags=re.MULTILINE)
    }
    return WrkResult(
        requests=int(requests_match.group(1)),
        duration_s=_to_ms(requests_match.group(2) + requests_match.group(3)) / 1000,
        requests_per_s=float(rps_match.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(x) for x in sock.groups()) if sock else 0,
        latency_ms=latency,
    )


def _wrk_script(requests: Sequence[Request]) -> str:
    """Lua for wrk: one fixed request, or several sent in turn (e.g. one per user's token)."""
    if len(requests) == 1:
        request = requests[0]
        lines = [f"wrk.method = {_lua_string(request.method)}"]
        if request.json_body is not None:
            body = json.dumps(request.json_body, ensure_ascii=False)
            lines.append(f"wrk.body = {_lua_string(body)}")
            lines.append('wrk.headers["Content-Type"] = "application/json"')
        for name, value in request.headers.items():
            # Spaces inside the index brackets: `[[[` would open a long string.
            lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
        return "\n".join(lines) + "\n"
    # Formatted once per thread in init(); request() only hands the next one out.
    lines = ["local specs = {"]
    for request in requests:
        headers = dict(request.headers)
        body = "nil"
        if request.json_body is not None:
            headers.setdefault("Content-Type", "application/json")
            body = _lua_string(json.dumps(request.json_body, ensure_ascii=False))
        header_items = ", ".join(
            f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()
        )
        path = urlsplit(request.url).path or "/"
        lines.append(
            f"  {{ {_lua_string(request.method)}, {_lua_string(path)}, {{ {header_items} }}, {body} }},"
        )
    lines += [
        "}",
        "local formatted = {}",
        "local next_index = 0",
        "init = function(args)",
        "  for i, spec in ipairs(specs) do",
        "    formatted[i] = wrk.format(spec[1], spec[2], spec[3], spec[4])",
        "  end",
        "end",
        "request = function()",
        "  next_index = next_index % #formatted + 1",
        "  return formatted[next_index]",
        "end",
    ]
    return "\n".join(lines) + "\n"


def run_wrk(
    wrk: str,
    request: Request | Sequence[Request],
    *,
    connections: int,
    duration_s: float,
    threads: int = 1,
    timeout_s: float = 10.0,
) -> WrkResult:
    """Closed-loop max throughput with wrk (`--latency`), the request(s) set in a Lua script.

    Several requests (same host) are sent in turn, e.g. the same POST with each user's token.
    """
    requests = [request] if isinstance(request, Request) else list(request)
    if not requests:
        raise ValueError("run_wrk needs at least one request")
    with tempfile.TemporaryDirectory(prefix="roadmap-bench-wrk-") as tmp:
        script = Path(tmp) / "request.lua"
        script.write_text(_wrk_script(requests))
        script.chmod(0o600)  # holds bearer tokens
        argv = [
            wrk,
            f"-t{threads}",
            f"-c{max(connections, threads)}",
            f"-d{duration_s:g}s",
            f"--timeout={timeout_s:g}s",
            "--latency",
            "-s",
            str(script),
            requests[0].url,
        ]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration_s + timeout_s + 30, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr.strip()[-300:]}")
    return parse_wrk(done.stdout)


def max_rate_python(
    make_request: Callable[[int], Request], *, concurrency: int, duration_s: float
) -> dict[str, float]:
    """The fallback when wrk is unavailable: closed-loop in this process (client-bound sooner)."""
    result = asyncio.run(
        closed_loop(make_request, concurrency=concurrency, duration_s=duration_s, timeout_s=10.0)
    )
    out = result.summary()
    out["rps"] = out["ok_rps"] = result.achieved_rate
    return out


async def cancel_quietly(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
