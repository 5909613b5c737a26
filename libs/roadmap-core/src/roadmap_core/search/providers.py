"""Web search providers: Brave Search (hosted) and SearXNG (self-hosted), one interface.

Brave Search is the hosted provider: it runs an index of its own (not a resale
of another engine's results), its web endpoint returns plain ranked results
(URL, title, snippet) which is all we need since we check the pages and let our
own model choose, and the key travels in a header (``X-Subscription-Token``) on
a GET, never in a URL that a log line could print. SearXNG is queried through
its JSON API (``format=json``, which its ``settings.yml`` must enable).

Errors never contain the API key: messages are built from the status code and
the provider's name only.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
from pydantic import SecretStr

from roadmap_core.settings import SearchProviderName, SearchSettings

_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class SearchResult:
    url: str
    title: str
    snippet: str


class SearchError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class SearchProvider(Protocol):
    name: str

    async def search(self, query: str, *, count: int) -> list[SearchResult]: ...

    async def aclose(self) -> None: ...


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    return re.sub(r"\s+", " ", html.unescape(_TAGS.sub("", value))).strip()[:limit]


def _results(items: Any, count: int) -> list[SearchResult]:
    out: list[SearchResult] = []
    seen: set[str] = set()
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        url = item.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            continue
        if url in seen:
            continue
        seen.add(url)
        snippet = item.get("description", item.get("content"))
        out.append(
            SearchResult(url, _text(item.get("title"), 200) or url[:200], _text(snippet, 500))
        )
        if len(out) >= count:
            break
    return out


class _HttpProvider:
    name = "search"

    def __init__(self, base_url: str, *, timeout_s: float) -> None:
        self._client = httpx2.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=httpx2.Timeout(timeout_s), trust_env=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        try:
            response = await self._client.get(path, params=params, headers=headers)
        except httpx2.HTTPError as exc:
            raise SearchError(f"{self.name}: {type(exc).__name__}", retryable=True) from None
        if response.status_code in (401, 403):
            raise SearchError(
                f"{self.name}: HTTP {response.status_code} (check the search API key)",
                retryable=False,
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise SearchError(f"{self.name}: HTTP {response.status_code}", retryable=True)
        if response.status_code != 200:
            raise SearchError(f"{self.name}: HTTP {response.status_code}", retryable=False)
        try:
            return response.json()
        except ValueError:
            raise SearchError(f"{self.name}: answer is not JSON", retryable=True) from None


class BraveSearch(_HttpProvider):
    name = "brave"
    DEFAULT_BASE_URL = "https://api.search.brave.com"

    def __init__(
        self, api_key: SecretStr, base_url: str | None = None, *, timeout_s: float
    ) -> None:
        super().__init__(base_url or self.DEFAULT_BASE_URL, timeout_s=timeout_s)
        self._key = api_key

    async def search(self, query: str, *, count: int) -> list[SearchResult]:
        body = await self._get(
            "/res/v1/web/search",
            {"q": query, "count": str(min(count, 20)), "safesearch": "strict"},
            {"x-subscription-token": self._key.get_secret_value(), "accept": "application/json"},
        )
        web = body.get("web") if isinstance(body, dict) else None
        return _results(web.get("results") if isinstance(web, dict) else None, count)


class SearxngSearch(_HttpProvider):
    name = "searxng"

    async def search(self, query: str, *, count: int) -> list[SearchResult]:
        body = await self._get(
            "/search",
            {"q": query, "format": "json", "safesearch": "2"},
            {"accept": "application/json"},
        )
        return _results(body.get("results") if isinstance(body, dict) else None, count)


def provider_from_settings(settings: SearchSettings) -> SearchProvider:
    if settings.search_provider is SearchProviderName.brave:
        assert settings.search_api_key is not None  # the settings refuse a missing key
        return BraveSearch(
            settings.search_api_key, settings.search_base_url, timeout_s=settings.search_timeout_s
        )
    assert settings.search_base_url is not None
    return SearxngSearch(settings.search_base_url, timeout_s=settings.search_timeout_s)
