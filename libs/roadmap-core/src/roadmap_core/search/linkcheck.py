"""Checking that a URL answers: redirects followed hop by hop, SSRF rules on each.

A check GETs the URL (some servers answer HEAD wrongly), follows up to
``max_redirects`` redirects itself (so every hop is a new request through the
guarded transport), and records the final URL, the last status, the content
type and, for HTML, the ``<title>`` read from at most ``max_body_bytes``. Only
2xx is ``ok``. Checks run concurrently, at most ``concurrency`` at a time, each
bounded by ``timeout_s`` in total.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from html.parser import HTMLParser

import httpx2

from roadmap_core.domain import LinkCheck, LinkStatus
from roadmap_core.search.guard import GuardedTransport, blocked_reason

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "RoadmapAgent-LinkCheck/1.0"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


class _TitleParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._in_title = False
        self.parts: list[str] = []
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and not self.done:
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self.done = True

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.parts.append(data)


def page_title(markup: str) -> str | None:
    """The first ``<title>`` of ``markup``, whitespace collapsed, at most 200 characters."""
    parser = _TitleParser()
    try:
        parser.feed(markup)
        parser.close()
    except AssertionError:  # HTMLParser's answer to some malformed declarations
        pass
    title = re.sub(r"\s+", " ", html.unescape("".join(parser.parts))).strip()
    return title[:200] or None


class LinkChecker:
    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        allow_hosts: frozenset[str] = frozenset(),
        concurrency: int = 10,
        timeout_s: float = 5.0,
        max_redirects: int = 5,
        max_body_bytes: int = 64 * 1024,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self.max_body_bytes = max_body_bytes
        self._slots = asyncio.Semaphore(concurrency)
        self._client = httpx2.AsyncClient(
            transport=GuardedTransport(
                allow_loopback=allow_loopback,
                allow_hosts=allow_hosts,
                max_connections=concurrency,
                ssl_context=httpx2.create_ssl_context(),
            ),
            follow_redirects=False,
            timeout=httpx2.Timeout(timeout_s),
            headers={"user-agent": USER_AGENT, "accept": "text/html,*/*;q=0.8"},
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check_many(self, urls: Sequence[str]) -> list[LinkCheck]:
        """One check per URL, in the same order, concurrently (bounded)."""
        return list(await asyncio.gather(*(self.check(url) for url in urls)))

    async def check(self, url: str) -> LinkCheck:
        async with self._slots:
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await self._follow(url)
            except TimeoutError:
                return _dead(url, None, f"no answer within {self.timeout_s:g} s")

    async def _follow(self, url: str) -> LinkCheck:
        current = url
        status: int | None = None
        for _hop in range(self.max_redirects + 1):
            try:
                target = httpx2.URL(current)
            except httpx2.InvalidURL as exc:
                return _dead(current, status, f"invalid URL: {exc}")
            if target.scheme not in ("http", "https") or not target.host:
                return _dead(current, status, "not an http(s) URL")
            try:
                async with self._client.stream("GET", target) as response:
                    status = response.status_code
                    location = response.headers.get("location")
                    if status in REDIRECT_STATUSES and location:
                        current = str(target.join(location))
                        continue
                    content_type = _media_type(response.headers.get("content-type"))
                    title = None
                    if 200 <= status < 300 and content_type in HTML_TYPES:
                        title = page_title(await self._head_of(response))
            except httpx2.HTTPError as exc:
                reason = blocked_reason(exc)
                error = f"refused: {reason}" if reason else f"{type(exc).__name__}: {exc}"
                return _dead(current, status if reason else None, error)
            ok = 200 <= status < 300
            return LinkCheck(
                status=LinkStatus.ok if ok else LinkStatus.dead,
                checked_at=datetime.now(UTC),
                http_status=status,
                final_url=current,
                content_type=content_type,
                page_title=title,
                error=None if ok else f"HTTP {status}",
            )
        return _dead(current, status, f"more than {self.max_redirects} redirects")

    async def _head_of(self, response: httpx2.Response) -> str:
        """The first ``max_body_bytes`` of the body, decoded (the rest is never read)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= self.max_body_bytes:
                break
        raw = b"".join(chunks)[: self.max_body_bytes]
        try:
            return raw.decode(response.charset_encoding or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return raw.decode("utf-8", errors="replace")


def _media_type(header: str | None) -> str | None:
    if not header:
        return None
    return header.split(";", 1)[0].strip().lower() or None


def _dead(url: str, status: int | None, error: str) -> LinkCheck:
    return LinkCheck(
        status=LinkStatus.dead,
        checked_at=datetime.now(UTC),
        http_status=status,
        final_url=url,
        error=error[:500],
    )
