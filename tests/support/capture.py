"""Everything the suite's processes and API calls said, kept for the secret scan (promise 17).

* process output: each started process writes stdout+stderr to a file in ``log_dir``;
* in-process log records (the ASGI app under test) go to ``log_dir/in-process.log``;
* HTTP answers: clients built with :func:`recording_transport` keep every error body
  (status >= 400) and register the tokens and API keys that successful answers hand out;
* rows: execution logs and error columns are dumped to ``log_dir`` before each truncation.

:meth:`Capture.scan` then looks for every registered secret in all of it.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from roadmap_api.logging_setup import JsonFormatter
from tests.support.sentinels import SecretRegistry

STREAMING_TYPES = ("text/event-stream",)
# JSON fields of successful answers that hand out a credential.
CREDENTIAL_FIELDS = ("access_token", "key")


@dataclass(frozen=True)
class Finding:
    where: str
    line_no: int
    secret_hint: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line_no}: secret {self.secret_hint} in {self.excerpt!r}"


def _hint(secret: str) -> str:
    return f"{secret[:6]}…({len(secret)} chars)"


class Capture:
    def __init__(self, log_dir: Path, secrets: SecretRegistry) -> None:
        self.log_dir = log_dir
        self.secrets = secrets
        self._lock = threading.Lock()
        self._bodies_path = log_dir / "http-error-bodies.jsonl"
        self.error_bodies = 0
        self.responses = 0

    # -- HTTP -------------------------------------------------------------------------

    def record_response(self, request: httpx.Request, response: httpx.Response) -> None:
        """Keep an error body; learn the credentials a successful answer hands out."""
        with self._lock:
            self.responses += 1
        if response.status_code >= 400:
            line = json.dumps(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "body": response.text,
                }
            )
            with self._lock:
                self.error_bodies += 1
                with self._bodies_path.open("a", encoding="utf-8") as out:
                    out.write(line + "\n")
            return
        if "json" not in response.headers.get("content-type", ""):
            return
        try:
            data = response.json()
        except ValueError:
            return
        if isinstance(data, dict):
            self.secrets.add(*(str(data[f]) for f in CREDENTIAL_FIELDS if data.get(f)))

    # -- scanning ---------------------------------------------------------------------

    def files(self) -> list[Path]:
        return sorted(p for p in self.log_dir.rglob("*") if p.is_file())

    def scan(self) -> list[Finding]:
        secrets = sorted(self.secrets.snapshot())
        findings: list[Finding] = []
        for path in self.files():
            text = path.read_text(encoding="utf-8", errors="replace")
            if not any(s in text for s in secrets):
                continue
            for line_no, line in enumerate(text.splitlines(), start=1):
                for secret in secrets:
                    if secret in line:
                        start = max(0, line.index(secret) - 80)
                        excerpt = line[start : start + 200].replace(secret, "<SECRET>")
                        findings.append(
                            Finding(
                                str(path.relative_to(self.log_dir)), line_no, _hint(secret), excerpt
                            )
                        )
        return findings


class RecordingTransport(httpx.BaseTransport):
    """Wraps a transport; every answer passes through :meth:`Capture.record_response`."""

    def __init__(self, capture: Capture, inner: httpx.BaseTransport | None = None) -> None:
        self.capture = capture
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if response.headers.get("content-type", "").startswith(STREAMING_TYPES):
            return response
        response.read()
        self.capture.record_response(request, response)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncRecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self, capture: Capture, inner: httpx.AsyncBaseTransport) -> None:
        self.capture = capture
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if response.headers.get("content-type", "").startswith(STREAMING_TYPES):
            return response
        await response.aread()
        self.capture.record_response(request, response)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class FileLogHandler(logging.Handler):
    """Root-logger handler: every record of this pytest process as one JSON line."""

    def __init__(self, path: Path) -> None:
        super().__init__(level=logging.DEBUG)
        self._out = path.open("a", encoding="utf-8")
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            line = f"{record.name}: {record.msg!r} {record.args!r}"
        with self.lock or threading.Lock():
            self._out.write(line + "\n")
            self._out.flush()

    def close(self) -> None:
        try:
            self._out.close()
        finally:
            super().close()


def dump_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with path.open("a", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, default=str) + "\n")
