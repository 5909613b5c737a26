"""``roadmap-db``: database operations run by deploy steps and the dev CLI."""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError

from roadmap_db import migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="roadmap-db", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "migrate", help="upgrade to the latest schema (advisory-locked, idempotent)"
    )
    up.add_argument("--revision", default="head")
    sub.add_parser("heads", help="print the revision the code expects")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        if args.command == "migrate":
            migrate.run(args.revision)
        else:
            print(migrate.head_revision())
    except ValidationError as exc:
        print(f"roadmap-db: invalid settings: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    except migrate.MigrationLockTimeoutError as exc:
        print(f"roadmap-db: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"roadmap-db: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
