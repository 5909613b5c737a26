"""Run the benchmarks and write the report: `uv run roadmap bench [NAME…] [--smoke]`.

Also `make bench`, or `uv run python bench/run.py …` from the repo root. See README.md.

Full mode writes `bench/results/<date>.md` and `.json` and exits 1 if a benchmark errors or
a target fails. `--smoke` runs every benchmark for a few seconds (CI), reports the
numbers, judges no target, and exits 1 only if a benchmark errors. Every process started
here is stopped here, on success, error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    # Run as a script (or through `roadmap bench`), bench/ is on sys.path, not the repo root.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from bench.lib.runner import main as run_benchmarks

    return run_benchmarks(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
