"""The link checker and the search providers against the fake search (a real process).

Every request goes to 127.0.0.1: the fake's redirects to private and metadata
addresses are refused before any connection is opened.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from roadmap_core.domain import LinkStatus
from roadmap_core.search import BraveSearch, LinkChecker, SearchError, SearxngSearch
from roadmap_core.search.linkcheck import page_title
from roadmap_dev.fake_llm import FakeLLM, fake_llm_server
from roadmap_dev.fake_search import MOUNT_PATH, SHAPES


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with fake_llm_server() as server:
        yield server


@pytest.fixture
def base(fake: FakeLLM) -> str:
    httpx.post(f"{fake.url}{MOUNT_PATH}/_control/reset").raise_for_status()
    return fake.url + MOUNT_PATH


@pytest.fixture
async def checker() -> AsyncIterator[LinkChecker]:
    checker = LinkChecker(allow_loopback=True, timeout_s=10)
    yield checker
    await checker.aclose()


async def test_searxng_and_brave_read_the_same_results(base: str) -> None:
    searxng = SearxngSearch(base, timeout_s=10)
    brave = BraveSearch(SecretStr("brave-test-key-0123456789"), base, timeout_s=10)
    try:
        a = await searxng.search("rust ownership", count=10)
        b = await brave.search("rust ownership", count=4)
    finally:
        await searxng.aclose()
        await brave.aclose()
    assert len(a) == len(SHAPES)
    assert [r.url for r in b] == [r.url for r in a[:4]]
    assert all(r.title and r.snippet for r in a)


async def test_search_errors_never_carry_the_key(fake: FakeLLM) -> None:
    key = "brave-secret-key-0123456789"
    # A path that answers 404: the provider reports the status, not the request.
    brave = BraveSearch(SecretStr(key), fake.url + "/nowhere", timeout_s=10)
    try:
        with pytest.raises(SearchError) as caught:
            await brave.search("x", count=3)
    finally:
        await brave.aclose()
    assert key not in str(caught.value)
    assert key not in repr(caught.value.__cause__)
    assert not caught.value.retryable


async def test_each_shape_is_checked(base: str, checker: LinkChecker) -> None:
    urls = {
        shape: f"{base}/pages/rust-ownership-abc123/{i}-{shape}" for i, shape in enumerate(SHAPES)
    }
    checks = dict(zip(urls, await checker.check_many(list(urls.values())), strict=True))
    assert checks["doc"].status is LinkStatus.ok
    assert checks["doc"].page_title == "Rust Ownership | Official documentation"
    assert checks["doc"].content_type == "text/html"
    assert checks["redirect"].status is LinkStatus.ok
    assert checks["redirect"].final_url == urls["redirect"] + "-landing"
    assert (checks["missing"].status, checks["missing"].http_status) == (LinkStatus.dead, 404)
    assert (checks["broken"].status, checks["broken"].http_status) == (LinkStatus.dead, 500)
    assert checks["pdf"].status is LinkStatus.ok
    assert (checks["pdf"].content_type, checks["pdf"].page_title) == ("application/pdf", None)
    # SSRF through a redirect: the first hop is allowed (loopback, in this test), the
    # second points at a private / metadata address and is refused before connecting.
    assert checks["private"].status is LinkStatus.dead
    assert checks["private"].error == "refused: private address"
    assert checks["private"].final_url == "http://10.0.0.1/internal"
    assert checks["metadata"].error == "refused: cloud metadata address"


async def test_loopback_is_refused_unless_allowed(base: str) -> None:
    strict = LinkChecker(timeout_s=10)
    try:
        check = await strict.check(f"{base}/pages/t-abc123/1-doc")
    finally:
        await strict.aclose()
    assert check.status is LinkStatus.dead
    assert check.error == "refused: loopback address"


def _counting_resolver(monkeypatch: pytest.MonkeyPatch, port: int) -> list[str]:
    """Lookups made from now on; ``pages.invalid`` resolves to 127.0.0.1."""
    lookups: list[str] = []
    real = asyncio.get_running_loop().getaddrinfo

    async def resolver(host: str, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        if host == "pages.invalid":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return await real(host, *args, **kwargs)

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver)
    return lookups


async def test_connects_to_the_address_it_checked(
    base: str, checker: LinkChecker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that only our resolver knows: the connection must go to the address the
    check resolved (no second lookup), and the URL's host stays the page's host."""
    port = int(base.split(":")[2].split("/")[0])
    lookups = _counting_resolver(monkeypatch, port)
    url = f"http://pages.invalid:{port}{MOUNT_PATH}/pages/t-abc123/1-doc"
    check = await checker.check(url)
    assert check.status is LinkStatus.ok, check.error
    assert lookups == ["pages.invalid"]


async def test_checks_of_one_site_share_a_connection(
    base: str, checker: LinkChecker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of one origin, checked one after the other: one lookup, one connection."""
    port = int(base.split(":")[2].split("/")[0])
    lookups = _counting_resolver(monkeypatch, port)
    for i in range(3):
        check = await checker.check(
            f"http://pages.invalid:{port}{MOUNT_PATH}/pages/t-abc123/{i}-doc"
        )
        assert check.status is LinkStatus.ok, check.error
    assert lookups == ["pages.invalid"]


async def test_an_address_is_checked_without_a_lookup(
    base: str, checker: LinkChecker, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(base.split(":")[2].split("/")[0])
    lookups = _counting_resolver(monkeypatch, port)
    assert (await checker.check(f"{base}/pages/t-abc123/1-doc")).status is LinkStatus.ok
    strict = LinkChecker(timeout_s=10)
    try:
        v4 = await strict.check(f"http://127.0.0.1:{port}/")
        v6 = await strict.check(f"http://[::1]:{port}/")
        mapped = await strict.check(f"http://[::ffff:169.254.169.254]:{port}/")
    finally:
        await strict.aclose()
    assert (v4.error, v6.error) == ("refused: loopback address", "refused: loopback address")
    assert mapped.error == (
        "refused: IPv6 address embedding a refused IPv4 address (cloud metadata address)"
    )
    assert lookups == []


async def test_a_slow_page_is_bounded(base: str) -> None:
    """Unroutable-in-practice: a page that never answers times out within the bound."""
    quick = LinkChecker(allow_loopback=True, timeout_s=0.5)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the TCP connection, never answers
        port = listener.getsockname()[1]
        try:
            check = await quick.check(f"http://127.0.0.1:{port}/")
        finally:
            await quick.aclose()
    assert check.status is LinkStatus.dead
    assert check.error is not None


def test_page_title_is_read_and_cleaned() -> None:
    assert page_title("<html><head><title>\n A &amp; B \n</title>") == "A & B"
    assert page_title("<p>no title</p>") is None
    assert page_title("<title>" + "x" * 500 + "</title>") == "x" * 200
