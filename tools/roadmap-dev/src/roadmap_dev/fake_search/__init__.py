"""A fake web search server (Brave Search and SearXNG APIs) serving its own result pages.

The fake LLM's process mounts it under ``/search-fake`` (``SEARCH_BASE_URL`` of the dev
stack and the tests); ``python -m roadmap_dev.fake_search`` runs it alone (benchmarks).
"""

from roadmap_dev.fake_search.server import (
    METADATA_TARGET,
    PRIVATE_TARGET,
    SHAPES,
    FakeSearchConfig,
    create_app,
    results_for,
    serve,
)

MOUNT_PATH = "/search-fake"


def search_env(llm_base_url: str) -> dict[str, str]:
    """Settings pointing a content worker at the fake search mounted in the fake LLM
    whose OpenAI base URL is ``llm_base_url`` (loopback pages allowed)."""
    return {
        "SEARCH_PROVIDER": "searxng",
        "SEARCH_BASE_URL": llm_base_url.removesuffix("/").removesuffix("/v1") + MOUNT_PATH,
        "LINK_CHECK_ALLOW_LOOPBACK": "true",
    }


__all__ = [
    "METADATA_TARGET",
    "MOUNT_PATH",
    "PRIVATE_TARGET",
    "SHAPES",
    "FakeSearchConfig",
    "create_app",
    "results_for",
    "search_env",
    "serve",
]
