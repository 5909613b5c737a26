"""Tutorial Markdown to safe HTML.

The Markdown is written by an LLM, so it is untrusted: markdown-it renders it with raw HTML
turned off (``<script>`` comes out as text), then nh3 (the Rust ``ammonia`` sanitizer)
keeps an allow-list of tags and attributes and only http(s)/mailto links, so an
``onerror=`` or a ``javascript:`` URL cannot survive either step on its own.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

TAGS = {
    "a", "abbr", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "img", "li", "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr",
    "ul",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "code": {"class"}}
SCHEMES = {"http", "https", "mailto"}


# A tutorial version never changes once stored: the same text renders to the same HTML, so
# the pages a learner returns to skip both steps (bounded: at most 256 texts are kept).
@lru_cache(maxsize=256)
def render(markdown: str) -> str:
    """Sanitized HTML of ``markdown``; links open with ``rel="noopener noreferrer nofollow"``."""
    html = _MD.render(markdown)
    return nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
