"""Run the fake LLM in a subprocess for tests and benchmarks.

with fake_llm_server(latency_ms=5, rules=[...]) as fake:
    settings = LLMSettings(openai_base_url=fake.base_url, ...)
    ...
    assert len(fake.requests()) == 3
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import httpx

from roadmap_dev.fake_llm.config import FakeConfig

# Generous: a loaded CI machine can take several seconds to import FastAPI.
STARTUP_TIMEOUT_S = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class FakeLLM:
    """A running fake: its URLs and its control endpoints."""

    def __init__(
        self, process: subprocess.Popen[bytes], host: str, port: int, log: IO[bytes] | None = None
    ) -> None:
        self.process = process
        self._log = log
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.base_url = f"{self.url}/v1"
        self._http = httpx.Client(base_url=self.url, timeout=10.0)

    @property
    def pid(self) -> int:
        return self.process.pid

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """The request log: seq, ts, schema, concept, fault, status, pid, retry_count…"""
        response = self._http.get("/_fake/requests", params={"since": since})
        response.raise_for_status()
        return list(response.json()["requests"])

    def reset(self) -> None:
        """Clear the request log and the rule counters (keeps the configuration)."""
        self._http.post("/_fake/reset").raise_for_status()

    def configure(self, **changes: Any) -> FakeConfig:
        """Change the configuration (merged over the current one); returns the result."""
        body = FakeConfig.model_validate(
            {**self.config().model_dump(mode="json"), **changes}
        ).model_dump(mode="json")
        response = self._http.put("/_fake/config", json=body)
        response.raise_for_status()
        return FakeConfig.model_validate(response.json())

    def config(self) -> FakeConfig:
        response = self._http.get("/_fake/config")
        response.raise_for_status()
        return FakeConfig.model_validate(response.json())

    def healthy(self) -> bool:
        try:
            return self._http.get("/_fake/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self._http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()

    def stderr_tail(self, limit: int = 4000) -> str:
        """The end of the fake's stderr (for diagnosing a failed start or a crash)."""
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]


def start_fake_llm(host: str = "127.0.0.1", port: int | None = None, **config: Any) -> FakeLLM:
    """Start the fake in a subprocess and wait until it answers; the caller must ``stop()`` it."""
    cfg = FakeConfig.model_validate(config)
    last_error = "did not start"
    for _ in range(3):  # a free port can be taken between probing and binding
        chosen = port or free_port(host)
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by FakeLLM.stop()
        process = subprocess.Popen(  # noqa: S603 - our own module, fixed argv
            [
                sys.executable,
                "-m",
                "roadmap_dev.fake_llm",
                "--host",
                host,
                "--port",
                str(chosen),
                "--config-json",
                json.dumps(cfg.model_dump(mode="json")),
            ],
            stdout=subprocess.DEVNULL,
            # A file, not a pipe: nobody drains a pipe while tests run, and a full one
            # would block the server.
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        fake = FakeLLM(process, host, chosen, log)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if fake.healthy():
                return fake
            time.sleep(0.05)
        last_error = fake.stderr_tail(2000) or f"exit code {process.poll()}"
        fake.stop()
        if port is not None:
            break
    raise RuntimeError(f"fake LLM server failed to start: {last_error}")


@contextmanager
def fake_llm_server(
    host: str = "127.0.0.1", port: int | None = None, **config: Any
) -> Iterator[FakeLLM]:
    """A fake LLM on a free loopback port for the duration of the ``with`` block."""
    fake = start_fake_llm(host, port, **config)
    try:
        yield fake
    finally:
        fake.stop()
