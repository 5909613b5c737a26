"""Web search and link checking for grounded resources.

``providers``: the :class:`SearchProvider` interface, Brave Search and SearXNG.
``addresses``: which IP addresses may be fetched (SSRF rules). ``guard``: the
HTTP transport that enforces them at connect time. ``linkcheck``: the checker.
"""

from roadmap_core.search.addresses import refusal
from roadmap_core.search.linkcheck import LinkChecker, page_title
from roadmap_core.search.providers import (
    BraveSearch,
    SearchError,
    SearchProvider,
    SearchResult,
    SearxngSearch,
    provider_from_settings,
)

__all__ = [
    "BraveSearch",
    "LinkChecker",
    "SearchError",
    "SearchProvider",
    "SearchResult",
    "SearxngSearch",
    "page_title",
    "provider_from_settings",
    "refusal",
]
