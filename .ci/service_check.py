"""One deployable service on its runtime dependencies alone: import it all, start it, see it ready.

``check`` runs with the Python of an environment made by ``uv sync --package <service>
--no-dev`` (``.ci/services.py`` makes one per service; so does each service's workflow)::

    <env>/bin/python .ci/service_check.py check roadmap-api --database-url URL --redis-url URL

1. no dev dependency is installed (pytest, workspace members the service does not need);
2. every module of the service and of each workspace library it needs imports;
3. the database is migrated with the environment's own ``roadmap-db`` (when it has one);
4. the service starts as in production, on loopback: an ASGI entry under uvicorn (through
   the service's own launcher when it has one, e.g. ``roadmap-api``) must
   answer ``GET /readyz`` with 200; a Celery entry's worker must answer a ping sent
   through its broker.

``entry SERVICE`` prints what a service's start command serves (from the workspace graph);
``probe ENTRY [--port N]`` asks an already running service once whether it is ready (the
image smoke test pipes this file into a running container: ``python - probe …``).

Standard library only (it runs inside a service's environment without being part of it);
the workspace graph is read from ``tools/roadmap-dev/src/roadmap_dev/workspace.py``.
Everything it starts is stopped before it exits, on success, failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import pkgutil
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

DEV_ONLY_DISTRIBUTIONS = ("pytest",)


class CheckFailed(Exception):
    """The service is not deployable on its own; the message says why."""


_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"service-check [{time.monotonic() - _STARTED:5.1f}s]: {message}", flush=True)


def repo() -> Path:
    # Not a module constant: `probe` runs from stdin inside an image, where __file__ is unset.
    return Path(__file__).resolve().parent.parent


def load_graph() -> ModuleType:
    graph = repo() / "tools" / "roadmap-dev" / "src" / "roadmap_dev" / "workspace.py"
    spec = importlib.util.spec_from_file_location("roadmap_service_check_graph", graph)
    if spec is None or spec.loader is None:
        raise CheckFailed(f"cannot load the workspace graph from {graph}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def check_no_dev_dependencies(dev_packages: list[str]) -> None:
    present = [name for name in dev_packages if importlib.util.find_spec(name) is not None]
    if present:
        raise CheckFailed(
            f"dev-only packages are installed: {', '.join(present)}; "
            "sync with `uv sync --package <service> --no-dev`"
        )


def optional_modules() -> set[str]:
    """Top-level modules of the workspace libraries' optional dependencies (extras).

    A service installs only the extras it asks for; a library module that needs another
    extra is not part of that service (roadmap_core.llm without ``roadmap-core[pipeline]``).
    """
    names: set[str] = set()
    for pyproject in sorted((repo() / "libs").glob("*/pyproject.toml")):
        extras = tomllib.loads(pyproject.read_text()).get("project", {})
        for requirements in extras.get("optional-dependencies", {}).values():
            for requirement in requirements:
                match = re.match(r"[A-Za-z0-9_.-]+", requirement)
                if match:
                    names.add(match.group(0).lower().replace("-", "_"))
    return names


OPTIONAL = optional_modules()


def _needs_an_extra(exc: BaseException | None) -> bool:
    return (
        isinstance(exc, ModuleNotFoundError)
        and exc.name is not None
        and exc.name.split(".")[0] in OPTIONAL
    )


def import_everything(packages: list[str]) -> int:
    """Import every module of ``packages`` (``__main__`` modules would run: skipped), but
    those that need an extra the service does not install."""
    count = 0
    for name in packages:
        try:
            package = importlib.import_module(name)
        except ImportError as exc:
            raise CheckFailed(f"cannot import {name}: {exc}") from exc
        count += 1
        for info in pkgutil.walk_packages(package.__path__, f"{name}.", onerror=_walk_failed):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue
            try:
                importlib.import_module(info.name)
            except Exception as exc:
                if _needs_an_extra(exc):
                    print(
                        f"service-check: {info.name} skipped: needs an extra ({getattr(exc, 'name', '')})"
                    )
                    continue
                raise CheckFailed(f"cannot import {info.name}: {exc!r}") from exc
            count += 1
    return count


def _walk_failed(module: str) -> None:
    exc = sys.exc_info()[1]
    if _needs_an_extra(exc):
        print(f"service-check: {module} skipped: needs an extra ({getattr(exc, 'name', '')})")
        return
    raise CheckFailed(f"cannot import {module}: {exc!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running(
    argv: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` in its own process group; stop the whole group on the way out."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - argv built from the environment's own binaries
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in text)


def wait_until(
    proc: subprocess.Popen[bytes], ready: Any, timeout: float, what: str, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if proc.poll() is not None:
            raise CheckFailed(f"{what} exited with code {proc.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what} was not ready within {timeout:.0f}s:\n{tail(log)}")
        time.sleep(0.5)


def http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def migrate(bin_dir: Path, env: dict[str, str]) -> None:
    command = bin_dir / "roadmap-db"
    if not command.exists():
        return  # a service without a database (a UI, say) has nothing to migrate
    result = subprocess.run(  # noqa: S603
        [str(command), "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise CheckFailed(f"roadmap-db migrate failed: {result.stderr.strip()[-2000:]}")
    say(result.stdout.strip().splitlines()[0])


def load_entry(entry: str) -> Any:
    module_name, _, attribute = entry.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def is_celery(app: Any) -> bool:
    return hasattr(app, "control") and hasattr(app, "conf")


def celery_pong(app: Any, hostname: str | None = None) -> bool:
    destination = [hostname] if hostname else None
    replies = app.control.ping(destination=destination, timeout=1.0) or []
    return any(hostname in reply for reply in replies) if hostname else bool(replies)


def start_and_wait(
    name: str, entry: str, bin_dir: Path, env: dict[str, str], timeout: float
) -> None:
    app = load_entry(entry)
    with tempfile.TemporaryDirectory(prefix="service-check-") as scratch:
        log = Path(scratch) / f"{name}.log"
        if is_celery(app):
            hostname = f"check-{name}@{uuid.uuid4().hex[:8]}"
            argv = [str(bin_dir / "celery"), "-A", entry, "worker", "--hostname", hostname,
                    "--concurrency", "1", "--without-gossip", "--without-mingle"]  # fmt: skip
            with running(argv, env, log) as proc:
                wait_until(
                    proc,
                    lambda: celery_pong(app, hostname),
                    timeout,
                    f"{name} (celery worker)",
                    log,
                )
                say(f"{name}: worker {hostname} answered a ping through its broker")
        else:  # an ASGI app
            port = free_port()
            # A service with a launcher of its own (roadmap-api) starts through it, as in
            # production; it serves the same entry.
            launcher = bin_dir / name
            server = [str(launcher)] if launcher.exists() else [str(bin_dir / "uvicorn"), entry]
            argv = [*server, "--host", "127.0.0.1", "--port", str(port)]
            url = f"http://127.0.0.1:{port}/readyz"
            with running(argv, env, log) as proc:
                wait_until(proc, lambda: http_ready(url), timeout, f"{name} (uvicorn)", log)
                say(f"{name}: GET /readyz answered 200")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `running`, which stops the service


def check(service: str, database_url: str, redis_url: str, timeout: float) -> int:
    graph = load_graph()
    workspace = graph.load(repo())
    member = workspace.members.get(graph.normalise(service))
    if member is None or member.service is None:
        names = ", ".join(m.name for m in workspace.services())
        print(f"service-check: {service} is not a deployable service ({names})", file=sys.stderr)
        return 2
    closure = workspace.runtime_closure(member.name)
    dev_only = [m.package for m in workspace.members.values() if m.name not in closure]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "APP_ENV": "development",
        "LOG_JSON": "false",
        # This check starts one service; the API's readiness must not wait for workers.
        "READYZ_REQUIRE_WORKERS": "false",
    }
    # Importing a worker's app reads its settings: the same environment as the service.
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "APP_ENV", "LOG_JSON")})
    bin_dir = Path(sys.executable).parent
    try:
        check_no_dev_dependencies([*DEV_ONLY_DISTRIBUTIONS, *dev_only])
        packages = sorted(workspace.members[name].package for name in closure)
        count = import_everything(packages)
        say(
            f"{member.name}: imported {count} modules of {', '.join(packages)}, no dev dependencies"
        )
        migrate(bin_dir, env)
        start_and_wait(member.name, member.service.entry, bin_dir, env, timeout)
    except CheckFailed as exc:
        print(f"service-check: {member.name}: {exc}", file=sys.stderr)
        return 1
    return 0


def entry_of(service: str) -> int:
    graph = load_graph()
    member = graph.load(repo()).members.get(graph.normalise(service))
    if member is None or member.service is None:
        print(f"service-check: {service} is not a deployable service", file=sys.stderr)
        return 2
    print(member.service.entry)
    return 0


def probe(entry: str, port: int) -> int:
    app = load_entry(entry)
    ready = celery_pong(app) if is_celery(app) else http_ready(f"http://127.0.0.1:{port}/readyz")
    return 0 if ready else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("check", help="import, migrate, start and wait until ready")
    run.add_argument("service", help="distribution name, e.g. roadmap-api")
    run.add_argument("--database-url", required=True)
    run.add_argument("--redis-url", required=True)
    run.add_argument("--timeout", type=float, default=90.0, help="seconds to become ready")
    commands.add_parser("entry", help="print a service's entry").add_argument("service")
    ask = commands.add_parser("probe", help="exit 0 if the running service is ready")
    ask.add_argument("entry", help="module:attribute, as `entry` prints it")
    ask.add_argument("--port", type=int, default=8000, help="where an HTTP service listens")
    args = parser.parse_args(argv)
    if args.command == "entry":
        return entry_of(args.service)
    if args.command == "probe":
        return probe(args.entry, args.port)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    return check(args.service, args.database_url, args.redis_url, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
