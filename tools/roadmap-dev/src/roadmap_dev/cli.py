"""`roadmap`: run the whole system locally, try it, and point the same flow at any API."""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from roadmap_client import ApiError, RoadmapClient
from roadmap_dev import credentials, state
from roadmap_dev.affected import affected as affected_services
from roadmap_dev.devstack import DevStack, StackInfo, StackOptions, reset_data
from roadmap_dev.errors import RoadmapError
from roadmap_dev.flow import (
    DEFAULT_GOAL,
    FlowResult,
    RoadmapRequestOptions,
    show,
    submit_and_follow,
)
from roadmap_dev.paths import Layout
from roadmap_devservers.errors import DevServerError

app = typer.Typer(
    name="roadmap",
    help="Roadmap Agent dev tool: run the stack, try a demo, generate against any API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, soft_wrap=True)
out = Console()

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="ROADMAP_DATA_DIR",
        help="Folder for the embedded servers' data and the stack files (default: <repo>/.roadmap).",
        show_default=False,
    ),
]
FakeLatency = Annotated[
    int, typer.Option("--fake-latency", min=0, metavar="MS", help="Fake LLM latency per call.")
]
FakeFaults = Annotated[
    float,
    typer.Option(
        "--fake-fault-rate",
        min=0.0,
        max=1.0,
        metavar="R",
        help="Share of fake LLM calls that fail.",
    ),
]
FakeSeed = Annotated[int | None, typer.Option("--fake-seed", help="Seed for the fake LLM.")]


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, stack: DevStack | None = None) -> Iterator[None]:
    """Ctrl-C, SIGTERM (`roadmap down`) and SIGHUP set `stop`; a second one hurries the stop."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and stack is not None:
            stack.supervisor.stop_timeout = 1.0
        stop.set()

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def print_banner(info: StackInfo, console: Console, elapsed: float) -> None:
    console.print()
    console.rule(f"[bold green]Roadmap Agent is running[/] (started in {elapsed:.1f}s)")
    console.print(f"  Web UI       [bold]{info.web_url}[/]   (open it in a browser)")
    console.print(f"  API          [bold]{info.api_url}[/]   (docs: {info.api_url}/docs)")
    console.print(f"  PostgreSQL   {info.database}")
    console.print(f"  Redis        {info.redis}")
    console.print(f"  LLM          {info.llm}")
    if info.flower_url:
        console.print(f"  Flower       {info.flower_url}")
    if info.admin is not None:
        console.print(
            f"  admin        {info.admin.email} / {info.admin.password}   [dim]({info.admin_note})[/]"
        )
    else:
        console.print(f"  admin        {info.admin_note}")
    console.print(f"  demo user    {info.demo.email} / {info.demo.password}")
    console.print(f"  logs         {info.log_dir}")
    for warning in info.warnings:
        console.print(f"  [yellow]note[/]         {warning}")
    console.print(
        "  [dim]Ctrl-C stops everything; or `uv run roadmap down` from another terminal. "
        f"Sign in at {info.web_url} as the demo user, or try "
        '`uv run roadmap generate "Learn Go"`.[/]'
    )
    console.rule()


@app.command()
def up(
    port: Annotated[int, typer.Option(help="API port (0: any free port).", min=0)] = 8000,
    web_port: Annotated[int, typer.Option(help="Web UI port (0: any free port).", min=0)] = 8080,
    host: Annotated[str, typer.Option(help="Address the API and fake LLM bind to.")] = "127.0.0.1",
    fake_latency: FakeLatency = 250,
    fake_fault_rate: FakeFaults = 0.0,
    fake_seed: FakeSeed = None,
    flower: Annotated[
        bool, typer.Option(help="Also run Flower (needs `flower` installed).")
    ] = False,
    flower_port: Annotated[int, typer.Option(help="Flower port.")] = 5555,
    data_dir: DataDir = None,
) -> None:
    """Start PostgreSQL, Redis, migrations, the API, both workers and the fake LLM; Ctrl-C stops all."""
    layout = Layout.resolve(data_dir)
    options = StackOptions(
        host=host,
        port=port,
        # `--port 0` (tests, a second stack) frees the UI's port too.
        web_port=web_port if port else 0,
        fake_latency_ms=fake_latency,
        fake_fault_rate=fake_fault_rate,
        fake_seed=fake_seed,
        flower=flower,
        flower_port=flower_port,
        echo=True,
    )
    stop = threading.Event()
    stack = DevStack(layout, options, console=err, stop=stop)
    started = time.monotonic()
    with stop_on_signals(stop, stack), stack:
        try:
            info = stack.start()
            print_banner(info, err, time.monotonic() - started)
        except KeyboardInterrupt:
            err.print("[yellow]interrupted during startup; stopping…[/]")
            raise typer.Exit(130) from None
        dead = stack.watch()
        if dead is not None:
            message = stack.failure_message(dead)
            err.print("[yellow]stopping everything…[/]")
            stack.stop()
            raise RoadmapError(message)
        err.print("[yellow]stopping everything…[/]")
        stopping = time.monotonic()
    err.print(f"[green]stopped[/] in {time.monotonic() - stopping:.1f}s.")


@app.command()
def down(data_dir: DataDir = None) -> None:
    """Stop the stack started by `roadmap up` (only the processes it recorded)."""
    layout = Layout.resolve(data_dir)
    if state.read(layout.stack_file) is None:
        err.print(f"no stack recorded in {layout.stack_file}; nothing to stop")
        return
    stopped = state.stop_recorded(layout.stack_file)
    if stopped:
        err.print("stopped: " + ", ".join(stopped))
    else:
        err.print("the recorded stack was no longer running; cleaned up its record")


@app.command()
def reset(data_dir: DataDir = None) -> None:
    """`down`, then delete the dev data (.roadmap/: database, Redis, credentials, logs)."""
    layout = Layout.resolve(data_dir)
    state.stop_recorded(layout.stack_file)
    if reset_data(layout):
        err.print(f"deleted {layout.data_dir}")
    else:
        err.print(f"nothing to delete ({layout.data_dir} does not exist)")


@dataclass
class FlowOutcome:
    """What the demo's client thread hands back to the main thread."""

    result: FlowResult | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def unwrap(self) -> FlowResult:
        if isinstance(self.error, ApiError):
            raise RoadmapError(f"API call failed: {self.error}")
        if isinstance(self.error, httpx.TransportError):
            raise RoadmapError(f"lost the API: {self.error} (see the logs folder)")
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise RoadmapError("the demo flow ended without a result")
        return self.result


def _finish(result: FlowResult) -> None:
    status = result.roadmap.status
    if status == "completed":
        return
    failed = result.roadmap.progress.failed
    hint = f" ({failed} items failed; retry with POST …/retry)" if failed else ""
    raise RoadmapError(f"roadmap ended as {status}{hint}")


@app.command()
def demo(
    goal: Annotated[str, typer.Argument(help="What to learn.")] = DEFAULT_GOAL,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the final roadmap as JSON on stdout.")
    ] = False,
    fake_latency: FakeLatency = 30,
    fake_fault_rate: FakeFaults = 0.0,
    fake_seed: FakeSeed = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 300.0,
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running",
            help="Keep the stack running afterwards, to look around in the web UI (Ctrl-C stops it).",
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Start the stack in the background, generate one roadmap, show it, and stop everything."""
    layout = Layout.resolve(data_dir)
    options = StackOptions(
        port=0,
        web_port=0,
        fake_latency_ms=fake_latency,
        fake_fault_rate=fake_fault_rate,
        fake_seed=fake_seed,
        echo=False,
    )
    stop = threading.Event()
    stack = DevStack(layout, options, console=err, stop=stop)
    outcome = FlowOutcome()
    with stop_on_signals(stop, stack), stack:
        try:
            info = stack.start()
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        err.print(f"stack ready: web UI {info.web_url} · API {info.api_url} · {escape(info.llm)}")
        err.print(f"[dim]service logs in {escape(str(info.log_dir))}[/]")
        client = RoadmapClient(info.api_url)

        def run() -> None:
            try:
                client.login(info.demo.email, info.demo.password)
                result = submit_and_follow(
                    client,
                    RoadmapRequestOptions(goal=goal),
                    err,
                    show_progress=not as_json,
                    timeout=timeout,
                    cancelled=stop,
                )
                if not as_json:
                    show(client, result, out)
                outcome.result = result
            except BaseException as exc:
                outcome.error = exc
            finally:
                outcome.done.set()

        # The flow runs beside the main thread, which watches the children and the signals.
        worker = threading.Thread(target=run, name="demo-flow", daemon=True)
        worker.start()
        dead = stack.watch(outcome.done)
        try:
            if dead is not None:
                raise RoadmapError(stack.failure_message(dead))
            if stop.is_set() and not outcome.done.is_set():
                err.print("[yellow]interrupted[/]")
                raise typer.Exit(130)
            worker.join()
            result = outcome.unwrap()
            if as_json:
                print(json.dumps(result.raw, indent=2))
            _finish(result)
            if keep_running:
                err.print(
                    f"the stack keeps running: open {info.web_url} and sign in as "
                    f"{info.demo.email} / {info.demo.password} to see this roadmap; "
                    "Ctrl-C stops everything."
                )
                dead = stack.watch()
                if dead is not None:
                    raise RoadmapError(stack.failure_message(dead))
            else:
                err.print(
                    f"the web UI was at {info.web_url}; to keep the stack running and look "
                    "around, run `uv run roadmap demo --keep-running` (or `uv run roadmap up`)."
                )
        finally:
            client.close()
            err.print("[dim]stopping the stack…[/]")
    err.print("[green]done; everything stopped.[/]")


def _login(client: RoadmapClient, api: str, token: str | None, email: str | None,
           password: str | None, data_dir: Path | None) -> None:  # fmt: skip
    if token:
        client.token = token
        return
    if email and password:
        try:
            client.login(email, password)
        except ApiError as exc:
            if exc.status != 401:
                raise
            try:
                client.register(email, password)
            except ApiError as taken:
                if taken.status == 409:  # the account exists: the password was wrong
                    raise RoadmapError(f"cannot log in as {email}: wrong password?") from None
                raise
            client.login(email, password)
        return
    with contextlib.suppress(RoadmapError):
        creds = credentials.load(Layout.resolve(data_dir).credentials_file)
        if creds is not None:
            client.login(creds.demo.email, creds.demo.password)
            return
    raise RoadmapError(
        f"no credentials for {api}: pass --token, or --email and --password "
        "(a new account is registered if the email is unknown)"
    )


@app.command()
def generate(
    goal: Annotated[str, typer.Argument(help="What to learn.")],
    api: Annotated[
        str, typer.Option(envvar="ROADMAP_API_URL", help="Base URL of a running API.")
    ] = "http://127.0.0.1:8000",
    token: Annotated[
        str | None, typer.Option(envvar="ROADMAP_TOKEN", help="Bearer token or API key.")
    ] = None,
    email: Annotated[str | None, typer.Option(envvar="ROADMAP_EMAIL")] = None,
    password: Annotated[str | None, typer.Option(envvar="ROADMAP_PASSWORD")] = None,
    level: Annotated[str, typer.Option(help="beginner, intermediate or advanced.")] = "beginner",
    weekly_hours: Annotated[float, typer.Option(help="Hours per week.")] = 5,
    weeks: Annotated[int, typer.Option(help="Number of weeks.")] = 4,
    language: Annotated[str, typer.Option(help="Content language (BCP 47 tag).")] = "en",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final roadmap as JSON.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 600.0,
    data_dir: DataDir = None,
) -> None:
    """Submit a roadmap to a running API (local `roadmap up`, or a deployment) and show it."""
    with RoadmapClient(api.rstrip("/")) as client:
        try:
            _login(client, api, token, email, password, data_dir)
            request = RoadmapRequestOptions(
                goal=goal, level=level, weekly_hours=weekly_hours, weeks=weeks, language=language
            )
            result = submit_and_follow(
                client, request, err, show_progress=not as_json, timeout=timeout
            )
            if as_json:
                print(json.dumps(result.raw, indent=2))
            else:
                show(client, result, out)
        except ApiError as exc:
            raise RoadmapError(f"API call failed: {exc}") from exc
        except httpx.TransportError as exc:
            raise RoadmapError(f"cannot reach {api}: {exc}; is the API running?") from exc
    _finish(result)


@app.command()
def affected(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Changed files, folders or glob patterns (`libs/db/**`), relative to the repo root.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="REF",
            help="Use what changed since REF (merge base with HEAD, plus uncommitted files).",
        ),
    ] = None,
) -> None:
    """Print the deployable services a change redeploys, one per line (from the uv workspace)."""
    for name in affected_services(Layout.resolve(None).root, paths or [], since):
        print(name)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context, names: Annotated[list[str] | None, typer.Argument()] = None) -> None:
    """Run the benchmarks (bench/run.py) — all, or the ones named."""
    layout = Layout.resolve(None)
    script = layout.root / "bench" / "run.py"
    if not script.is_file():
        raise RoadmapError(f"{script} does not exist: this checkout has no benchmark runner yet")
    argv = [str(script), *(names or []), *ctx.args]
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = argv
    sys.path.insert(0, str(script.parent))  # as `python bench/run.py` would
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code:
            raise typer.Exit(code) from None
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


@app.command()
def openapi(
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Change nothing; fail if the snapshot or a generated client is stale, or if"
            " a breaking change lacks a new major version and a changelog entry (CI).",
        ),
    ] = False,
) -> None:
    """Rewrite the API's OpenAPI snapshot and the clients generated from it (docs/api.md)."""
    from roadmap_dev import contract  # imports the API app: only this command needs it

    outcome = contract.sync(check=check)
    for path in outcome.written:
        out.print(f"wrote {path}")
    for note in outcome.notes:
        err.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if outcome.problems:
        for problem in outcome.problems:
            err.print(escape(problem), highlight=False)
        raise typer.Exit(1)
    if check:
        out.print("OpenAPI snapshot, Python models and TypeScript types are current")
    elif not outcome.written:
        out.print("nothing to update")


def main() -> None:
    """Console entry point: known failures become one line on stderr, never a traceback."""
    try:
        app()
    except RoadmapError as exc:
        err.print(f"[bold red]roadmap:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except DevServerError as exc:
        err.print(f"[bold red]roadmap:[/] {escape(str(exc))}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # `roadmap demo --json | head`: the reader left; nothing more to say.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    main()
