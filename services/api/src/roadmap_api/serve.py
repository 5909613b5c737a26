"""The API's one launcher: ``roadmap-api`` (or ``python -m roadmap_api``).

It serves ``roadmap_api.main:app`` under uvicorn with :class:`LimitedHttpToolsProtocol`
always: the images, the Railway start commands, ``roadmap up``, the tests and the
benchmarks all start the API through it, so none can leave the bounds on slow and
oversized clients out (``http_limits``). The options are uvicorn's names for what a
deployment tunes; what they leave unset is uvicorn's default (``--workers``: the
``WEB_CONCURRENCY`` variable, else 1; proxy headers trusted from ``FORWARDED_ALLOW_IPS``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, Final

import uvicorn

from roadmap_api.http_limits import LimitedHttpToolsProtocol

APP: Final = "roadmap_api.main:app"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roadmap-api",
        description="Serve the Roadmap API (uvicorn, with the API's HTTP limits).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=None, help="default: $WEB_CONCURRENCY or 1")
    parser.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="trust X-Forwarded-* from $FORWARDED_ALLOW_IPS (default: on)",
    )
    parser.add_argument(
        "--timeout-graceful-shutdown",
        type=int,
        default=None,
        metavar="SECONDS",
        help="after SIGTERM, close the connections still open (SSE streams) after this long",
    )
    parser.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="no uvicorn access line (the app logs its own, with route templates)",
    )
    parser.add_argument(
        "--app",
        default=APP,
        help=argparse.SUPPRESS,  # benchmarks serve a bare app exactly as the API is served
    )
    return parser


def run_options(argv: Sequence[str]) -> dict[str, Any]:
    """The arguments of ``uvicorn.run`` for a command line: always the API's protocol."""
    args = _parser().parse_args(argv)
    return {
        "app": args.app,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "http": LimitedHttpToolsProtocol,
        "proxy_headers": args.proxy_headers,
        "timeout_graceful_shutdown": args.timeout_graceful_shutdown,
        "access_log": args.access_log,
    }


def main(argv: Sequence[str] | None = None) -> None:
    # uvicorn.run, not a Server of our own: it owns the process model (one process, or a
    # supervisor and WEB_CONCURRENCY workers sharing one socket) and the exit codes.
    uvicorn.run(**run_options(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
