"""A fake web search server (Brave Search and SearXNG APIs) serving its own result pages.

The fake LLM's process mounts it under ``/search-fake`` (``SEARCH_BASE_URL`` of the dev
stack and the tests); ``python -m roadmap_dev.fake_search`` runs it alone (benchmarks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roadmap_dev.fake_search.server import (
    METADATA_TARGET,
    PRIVATE_TARGET,
    SHAPES,
    FakeSearchConfig,
    create_app,
    results_for,
    serve,
)

if TYPE_CHECKING:  # the fake server's own process needs none of the pipeline
    from roadmap_core.pipeline import ResourceSearch

MOUNT_PATH = "/search-fake"


def search_env(llm_base_url: str) -> dict[str, str]:
    """Settings pointing a content worker at the fake search mounted in the fake LLM
    whose OpenAI base URL is ``llm_base_url`` (loopback pages allowed)."""
    return {
        "SEARCH_PROVIDER": "searxng",
        "SEARCH_BASE_URL": llm_base_url.removesuffix("/").removesuffix("/v1") + MOUNT_PATH,
        "LINK_CHECK_ALLOW_LOOPBACK": "true",
    }


def loopback_search(llm_base_url: str, *, timeout_s: float = 10) -> ResourceSearch:
    """In-process search and link checking against the fake search mounted in the fake
    LLM whose base URL is ``llm_base_url`` (loopback pages allowed), for tests."""
    from roadmap_core.pipeline import ResourceSearch
    from roadmap_core.search import LinkChecker, SearxngSearch

    base = llm_base_url.removesuffix("/").removesuffix("/v1") + MOUNT_PATH
    return ResourceSearch(
        SearxngSearch(base, timeout_s=timeout_s),
        LinkChecker(allow_loopback=True, timeout_s=timeout_s),
    )


__all__ = [
    "METADATA_TARGET",
    "MOUNT_PATH",
    "PRIVATE_TARGET",
    "SHAPES",
    "FakeSearchConfig",
    "create_app",
    "loopback_search",
    "results_for",
    "search_env",
    "serve",
]
