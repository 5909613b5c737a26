"""``python -m roadmap_dev.fake_llm --port 8765 --latency-ms 200 --seed 1``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from roadmap_dev.fake_llm.config import FakeConfig
from roadmap_dev.fake_llm.server import serve


def parse_args(argv: Sequence[str] | None = None) -> tuple[FakeConfig, str, int]:
    parser = argparse.ArgumentParser(
        prog="python -m roadmap_dev.fake_llm", description="OpenAI-compatible fake LLM server"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=None)
    parser.add_argument("--jitter-ms", type=float, default=None)
    parser.add_argument("--tokens-per-s", type=float, default=None)
    parser.add_argument("--fault-rate", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--concepts", type=int, default=None, help="concepts per framework")
    parser.add_argument(
        "--config-json", default=None, help="a full FakeConfig as JSON (flags override it)"
    )
    args = parser.parse_args(argv)
    data = json.loads(args.config_json) if args.config_json else {}
    for flag, key in (
        ("latency_ms", "latency_ms"),
        ("jitter_ms", "jitter_ms"),
        ("tokens_per_s", "tokens_per_s"),
        ("fault_rate", "fault_rate"),
        ("seed", "seed"),
        ("concepts", "concepts"),
    ):
        value = getattr(args, flag)
        if value is not None:
            data[key] = value
    return FakeConfig.model_validate(data), args.host, args.port


def main(argv: Sequence[str] | None = None) -> None:
    config, host, port = parse_args(argv)
    serve(config, host=host, port=port)


if __name__ == "__main__":
    main()
