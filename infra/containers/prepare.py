"""Prepare a local container engine where there is none: podman serving the Docker API.

    infra/containers/prepare                 prepare, then serve until Ctrl-C (prints the env)
    infra/containers/prepare -- CMD [ARG…]   prepare, serve while CMD runs with that env, stop
    infra/containers/prepare --only          prepare and exit (nothing keeps running)

Preparing is idempotent and takes about a second when everything is in place:

1. the Debian packages podman needs (podman, runc, netavark, aardvark-dns, iptables) and
   debootstrap, installed with apt-get when missing;
2. the engine settings these machines need, in a containers.conf drop-in (see
   `ENGINE_SETTINGS`);
3. local stand-ins for the images the project would pull — a Debian base made with
   debootstrap, then Python 3.11, PostgreSQL and Redis on top of it (`standins/`) — each
   rebuilt only when its inputs change (a hash of them is a label of the image).

Serving starts `podman system service` on a socket of its own and ends it, with every
container started through it and every process it left (podman's `conmon` monitors), when
the command ends or on Ctrl-C/SIGTERM: nothing outlives the command that started it. We are
the processes' "child subreaper", so the monitors that podman detaches stay ours to stop.

Standard library only: it runs before (and without) the project's virtualenv.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import IO

HERE = Path(__file__).resolve().parent
STANDINS = HERE / "standins"

PACKAGES = ("podman", "runc", "netavark", "aardvark-dns", "iptables", "debootstrap")
CONF_DROP_IN = Path("/etc/containers/containers.conf.d/50-roadmap-agent.conf")
# runc: crun fails here (cgroups in hybrid mode, and it asks for more open files and
# processes than root may have); the ulimits stay within root's hard limits; netavark is
# named so a CNI config left by the package is not probed.
ENGINE_SETTINGS = """\
# Written by roadmap-agent's infra/containers/prepare.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"

[network]
network_backend = "netavark"
"""

SUITE = "bookworm"  # its Python is 3.11, the services' version
BASE_IMAGE = f"localhost/roadmap-standin/debian:{SUITE}"
PYTHON_IMAGE = "localhost/roadmap-standin/python:3.11"
POSTGRES_IMAGE = "localhost/roadmap-standin/postgres:15"
REDIS_IMAGE = "localhost/roadmap-standin/redis:7"
INPUTS_LABEL = "org.roadmap-agent.standin-inputs"
DEB_CACHE = Path("/var/cache/roadmap-agent/debootstrap")
SOCKET_DIR = Path("/run/roadmap-agent")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
MIN_FREE_BYTES = 3 * 1024**3

# Like Debian's own slim container images: no manuals, docs or translations.
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
"""
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    # uv trusts only its own roots unless told otherwise; pip and apt use this bundle too.
    f"ENV SSL_CERT_FILE={CA_BUNDLE}",
    'CMD ["bash"]',
)

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
# Resolved before any fork: a child must not load anything between fork and exec.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


class PrepareError(RuntimeError):
    """A step failed; the message says which and what to do."""


def say(text: str) -> None:
    print(f"prepare: {text}", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str],
    *,
    quiet: bool = False,
    env: dict[str, str] | None = None,
    stdin: IO[bytes] | None = None,
) -> str:
    """Run a command; raise PrepareError with its last output lines if it fails."""
    result = subprocess.run(list(argv), capture_output=True, stdin=stdin, env=env, check=False)
    stdout = result.stdout.decode(errors="replace")
    stderr = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        tail = "\n".join((stderr or stdout).strip().splitlines()[-15:])
        raise PrepareError(f"`{' '.join(argv[:4])} …` failed ({result.returncode}):\n{tail}")
    if not quiet and stderr.strip():
        print(stderr.rstrip(), file=sys.stderr)
    return stdout


@dataclass
class Timer:
    """Seconds spent in each step, printed at the end (the preparation's cost is a figure)."""

    steps: list[tuple[str, float]]

    def step(self, name: str, fn: Callable[[], str | None]) -> None:
        started = time.monotonic()
        outcome = fn()
        seconds = time.monotonic() - started
        self.steps.append((name, seconds))
        say(f"{name}: {outcome or 'done'} ({seconds:.1f} s)")


# -- 1. packages -----------------------------------------------------------------------------


def _installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Status}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() == "installed"


def ensure_packages() -> str:
    if shutil.which("dpkg-query") is None or shutil.which("apt-get") is None:
        missing = [p for p in ("podman", "debootstrap") if shutil.which(p) is None]
        if missing:
            raise PrepareError(
                f"{', '.join(missing)} missing and this is not a Debian-like system: install "
                f"{', '.join(PACKAGES)} with your package manager (or use Docker instead)"
            )
        return "not a Debian system; using the podman on PATH"
    missing = [p for p in PACKAGES if not _installed(p)]
    if not missing:
        return "installed already"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env, quiet=True)
    run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        env=env,
        quiet=True,
    )
    return f"installed {' '.join(missing)}"


# -- 2. settings -----------------------------------------------------------------------------


def ensure_settings() -> str:
    if CONF_DROP_IN.is_file() and CONF_DROP_IN.read_text() == ENGINE_SETTINGS:
        return f"{CONF_DROP_IN} up to date"
    CONF_DROP_IN.parent.mkdir(parents=True, exist_ok=True)
    CONF_DROP_IN.write_text(ENGINE_SETTINGS)
    return f"wrote {CONF_DROP_IN}"


# -- 3. stand-in images ----------------------------------------------------------------------


def _image_label(image: str) -> str | None:
    result = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{json .Labels}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    labels = json.loads(result.stdout.strip() or "null") or {}
    value = labels.get(INPUTS_LABEL)
    return value if isinstance(value, str) else None


def _image_id(image: str) -> str | None:
    result = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or None if result.returncode == 0 else None


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:32]


def base_inputs() -> str:
    return _digest("base-v1", SUITE, DPKG_EXCLUDES, *IMPORT_CHANGES)


def _check_disk(path: Path) -> None:
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise PrepareError(
            f"only {free / 1024**3:.1f} GiB free under {path}; the stand-in images need "
            f"{MIN_FREE_BYTES / 1024**3:.0f} GiB while they are built"
        )


def _trim(root: Path) -> None:
    """What Debian's slim images leave out, and the package manager's caches."""
    for folder in ("usr/share/man", "usr/share/info", "usr/share/locale", "var/lib/apt/lists"):
        for entry in (root / folder).glob("*"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    for doc in (root / "usr/share/doc").rglob("*"):
        if doc.is_file() and doc.name != "copyright":
            doc.unlink()
    for cached in (root / "var/cache/apt").rglob("*"):
        if cached.is_file():
            cached.unlink()
    for log in (root / "var/log").rglob("*.log"):
        log.unlink()
    (root / "etc/dpkg/dpkg.cfg.d/roadmap-slim").write_text(DPKG_EXCLUDES)
    (root / "etc/apt/apt.conf.d/90roadmap-no-recommends").write_text(
        'APT::Install-Recommends "false";\n'
    )


def build_base(inputs: str) -> None:
    """debootstrap a minimal Debian into a temporary tree, trim it, import it as an image."""
    work = Path("/var/tmp")
    _check_disk(work)
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    tree = Path(tempfile.mkdtemp(prefix="roadmap-standin-", dir=work))
    try:
        run(
            [
                "debootstrap", "--variant=minbase", "--include=ca-certificates",
                f"--cache-dir={DEB_CACHE}", SUITE, str(tree),
            ],
            quiet=True,
        )  # fmt: skip
        _trim(tree)
        changes = [arg for change in IMPORT_CHANGES for arg in ("--change", change)]
        changes += ["--change", f"LABEL {INPUTS_LABEL}={inputs}"]
        tar = subprocess.Popen(
            ["tar", "-C", str(tree), "--numeric-owner", "-c", "."],
            stdout=subprocess.PIPE,
        )
        try:
            run(["podman", "import", "--quiet", *changes, "-", BASE_IMAGE], stdin=tar.stdout)
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            if tar.wait() != 0:
                raise PrepareError("tar of the debootstrap tree failed")
    finally:
        shutil.rmtree(tree, ignore_errors=True)


@dataclass(frozen=True)
class Derived:
    """A stand-in built FROM the base with one of the Containerfiles in standins/."""

    image: str
    containerfile: str
    context_files: tuple[str, ...] = ()

    def inputs(self, base_id: str) -> str:
        files = [
            (STANDINS / name).read_bytes() for name in (self.containerfile, *self.context_files)
        ]
        return _digest("derived-v1", base_id, *files)

    def build(self, base_id: str, inputs: str) -> None:
        run(
            [
                "podman", "build", "--quiet", "--format", "docker", "--pull=never",
                "--build-arg", f"BASE={base_id}", "--label", f"{INPUTS_LABEL}={inputs}",
                "-f", str(STANDINS / self.containerfile), "-t", self.image, str(STANDINS),
            ],
            quiet=True,
        )  # fmt: skip


DERIVED = (
    Derived(PYTHON_IMAGE, "python.Containerfile"),
    Derived(POSTGRES_IMAGE, "postgres.Containerfile", ("postgres-entrypoint.sh",)),
    Derived(REDIS_IMAGE, "redis.Containerfile", ("redis-entrypoint.sh",)),
)


def _replace(image: str, build: Callable[[], None], replaced: list[str]) -> None:
    """Build `image`; the version it replaces is noted, to be removed at the end."""
    old = _image_id(image)
    build()
    if old and old != _image_id(image):
        replaced.append(old)


def ensure_base(replaced: list[str]) -> str:
    inputs = base_inputs()
    if _image_label(BASE_IMAGE) == inputs:
        return f"{BASE_IMAGE} up to date"
    _replace(BASE_IMAGE, lambda: build_base(inputs), replaced)
    return f"built {BASE_IMAGE} (debootstrap {SUITE} minbase)"


def ensure_derived(standin: Derived, replaced: list[str]) -> str:
    base_id = _image_id(BASE_IMAGE)
    if base_id is None:
        raise PrepareError(f"{BASE_IMAGE} is missing; it is built first")
    inputs = standin.inputs(base_id)
    if _image_label(standin.image) == inputs:
        return f"{standin.image} up to date"
    _replace(standin.image, lambda: standin.build(base_id, inputs), replaced)
    return f"built {standin.image}"


def prepare(timer: Timer) -> None:
    if os.geteuid() != 0:
        raise PrepareError("run as root: it installs packages and runs podman as root")
    timer.step("packages", ensure_packages)
    timer.step("engine settings", ensure_settings)
    replaced: list[str] = []
    timer.step("stand-in base", partial(ensure_base, replaced))
    for standin in DERIVED:
        name = standin.image.rsplit("/", 1)[1]
        timer.step(f"stand-in {name}", partial(ensure_derived, standin, replaced))
    timer.step("replaced stand-ins", partial(remove_superseded, replaced))


def remove_superseded(replaced: list[str]) -> str:
    """Stand-ins replaced by this run go once nothing is built on them any more (a replaced
    base is still the parent of the old derived images until those are replaced too)."""
    removed = 0
    for image_id in replaced:
        result = subprocess.run(["podman", "rmi", image_id], capture_output=True, check=False)
        removed += result.returncode == 0
    return f"removed {removed} of {len(replaced)}" if replaced else "none"


# -- serving ---------------------------------------------------------------------------------


def environment(socket_path: Path) -> dict[str, str]:
    """What a client of this engine needs: the socket, testcontainers' settings, the images."""
    env = {
        "DOCKER_HOST": f"unix://{socket_path}",
        # Ryuk (testcontainers' reaper) is an image that cannot be pulled without a registry;
        # our containers carry an owner label and are reaped by roadmap_devservers instead.
        "TESTCONTAINERS_RYUK_DISABLED": "true",
        # testcontainers thinks it runs inside a container here (/.dockerenv) and would talk
        # to containers through the bridge gateway; the published loopback ports are the way.
        "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
        "ROADMAP_POSTGRES_IMAGE": POSTGRES_IMAGE,
        "ROADMAP_REDIS_IMAGE": REDIS_IMAGE,
        "ROADMAP_PYTHON_IMAGE": PYTHON_IMAGE,
    }
    if CA_BUNDLE.is_file():
        env["ROADMAP_BUILD_CA_BUNDLE"] = str(CA_BUNDLE)
    return env


def _prctl(option: int, value: int) -> None:
    if _PRCTL(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _die_with(parent: int) -> Callable[[], None]:
    """preexec_fn: the kernel sends SIGTERM to the child when we die, even by SIGKILL."""

    def preexec() -> None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # we died between fork and prctl
            os._exit(1)

    return preexec


def _ping(socket_path: Path) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(1)
    try:
        sock.connect(str(socket_path))
        sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        return reply.status == 200
    except OSError:
        return False
    finally:
        sock.close()


def _processes() -> Iterator[tuple[int, int, list[str]]]:
    """(pid, parent pid, argv) of every process we can see."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        yield int(entry.name), ppid, [a.decode(errors="replace") for a in argv if a]


def descendants(root: int) -> dict[int, list[str]]:
    """Every process below `root` (its children, theirs, …) with its argv."""
    table = list(_processes())
    found: dict[int, list[str]] = {}
    frontier = {root}
    while frontier:
        children = {pid: argv for pid, ppid, argv in table if ppid in frontier and pid not in found}
        found.update(children)
        frontier = set(children)
    return found


def conmon_containers(processes: dict[int, list[str]]) -> set[str]:
    """Ids of the containers whose `conmon` monitor is among `processes`."""
    ids = set()
    for argv in processes.values():
        if argv and Path(argv[0]).name == "conmon" and "-c" in argv:
            index = argv.index("-c") + 1
            if index < len(argv):
                ids.add(argv[index])
    return ids


def _reap(keep: set[int]) -> None:
    """Collect exited orphans re-parented to us (we are their subreaper)."""
    for pid, ppid, _ in list(_processes()):
        if ppid == os.getpid() and pid not in keep:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


class Engine:
    """`podman system service` on a socket of its own, and everything started through it."""

    def __init__(self) -> None:
        SOCKET_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket = SOCKET_DIR / f"podman-{os.getpid()}.sock"
        # podman logs errors that do not matter here (no systemd to time health checks)
        # at every container; they go to this file, kept when the command fails.
        self.log = SOCKET_DIR / f"podman-{os.getpid()}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        self.socket.unlink(missing_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C in the terminal reaches the command, which still
                # needs the engine to remove its containers; we stop the engine after it.
                start_new_session=True,
                preexec_fn=_die_with(os.getpid()),  # the only hook for PR_SET_PDEATHSIG
            )
        deadline = time.monotonic() + 30
        while not _ping(self.socket):
            if self.process.poll() is not None:
                raise PrepareError(
                    f"podman system service exited with {self.process.returncode}:\n"
                    f"{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise PrepareError(f"podman system service did not answer on {self.socket}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Remove the containers started through us, stop the service, end what is left."""
        left = descendants(os.getpid())
        containers = conmon_containers(left)
        if containers:
            subprocess.run(
                ["podman", "rm", "--force", "--ignore", "--time", "5", *sorted(containers)],
                capture_output=True,
                check=False,
                timeout=120,
            )
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = descendants(os.getpid())
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 3
            while left and time.monotonic() < deadline:
                _reap(set())
                left = {pid: argv for pid, argv in left.items() if Path(f"/proc/{pid}").exists()}
                time.sleep(0.05)
        _reap(set())
        self.socket.unlink(missing_ok=True)

    def discard_log(self) -> None:
        self.log.unlink(missing_ok=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C: temporary trees, containers and the engine are cleaned up."""
    raise KeyboardInterrupt(f"signal {signum}")


def serve(command: list[str], env: dict[str, str], engine: Engine) -> int:
    """Run `command` (or, without one, wait for Ctrl-C/SIGTERM) while the engine serves."""
    if not command:
        for name, value in env.items():
            print(f"export {name}={value}", flush=True)
        say("the engine serves until Ctrl-C (or SIGTERM); then it stops and removes its containers")
        try:
            while engine.process is not None and engine.process.poll() is None:
                _reap({engine.process.pid})
                time.sleep(1)
            say("podman system service ended on its own")
            return 1
        except KeyboardInterrupt:
            return 0

    say(f"running: {' '.join(command)}")
    try:
        child = subprocess.Popen(command, env={**os.environ, **env})
    except OSError as exc:
        raise PrepareError(f"cannot run {command[0]}: {exc}") from exc
    keep = {child.pid} | ({engine.process.pid} if engine.process else set())
    terminated = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal terminated
        terminated = True
        if child.poll() is None:
            child.send_signal(signum)

    # Ctrl-C reaches the command directly (same process group); we wait for it to clean up.
    previous = {
        sig: signal.signal(sig, forward if sig == signal.SIGTERM else signal.SIG_IGN)
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        while child.poll() is None:
            _reap(keep)
            time.sleep(0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    code = child.returncode
    if terminated and code == 0:
        code = 143
    return code if code >= 0 else 128 - code


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args:
        index = args.index("--")
        args, command = args[:index], args[index + 1 :]
    parser = argparse.ArgumentParser(
        prog="infra/containers/prepare",
        description="Prepare podman (Docker API) with local stand-in images, then serve it "
        "for a command or until Ctrl-C. See infra/containers/README.md.",
        usage="%(prog)s [--only] [-- COMMAND [ARG...]]",
    )
    parser.add_argument("--only", action="store_true", help="prepare, start nothing, exit")
    options = parser.parse_args(args)
    if options.only and command:
        parser.error("--only starts nothing; drop the command or --only")

    timer = Timer([])
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        prepare(timer)
        total = sum(seconds for _, seconds in timer.steps)
        say(f"ready in {total:.1f} s")
        if options.only:
            return 0
        engine = Engine()
        try:
            started = time.monotonic()
            engine.start()
            say(f"Docker API on unix://{engine.socket} ({time.monotonic() - started:.1f} s)")
            code = serve(command, environment(engine.socket), engine)
        finally:
            engine.stop()
        if code == 0:
            engine.discard_log()
        else:
            say(f"the engine's own log is kept in {engine.log}")
        return code
    except PrepareError as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
