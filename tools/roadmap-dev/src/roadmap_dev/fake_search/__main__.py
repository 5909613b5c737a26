"""``python -m roadmap_dev.fake_search --port 8766 --search-latency-ms 300 --page-latency-ms 100``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from roadmap_dev.fake_search.server import FakeSearchConfig, serve


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m roadmap_dev.fake_search",
        description="fake web search (Brave and SearXNG APIs) serving its result pages",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--search-latency-ms", type=float, default=0.0)
    parser.add_argument("--page-latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    config = FakeSearchConfig(
        search_latency_ms=args.search_latency_ms, page_latency_ms=args.page_latency_ms
    )
    serve(config, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
