"""What the numbers were measured on: CPU, memory, OS and the versions that matter."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path

import psutil

KEY_PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "celery",
    "kombu",
    "redis",
    "sqlalchemy",
    "asyncpg",
    "pydantic",
    "openai",
    "httpx",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, str]:
    mem = psutil.virtual_memory()
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count() or 0),
        "ram_gib": f"{mem.total / 2**30:.1f}",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def load_average() -> str:
    """1/5/15-minute load averages: other work on the machine skews every latency figure."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def package_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def wrk_version() -> str | None:
    exe = shutil.which("wrk")
    if exe is None:
        return None
    out = subprocess.run(
        [exe, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    first = (out.stdout or out.stderr).splitlines()
    return first[0].split("Copyright")[0].strip() if first else "unknown"


def git_revision(repo: Path) -> str | None:
    if shutil.which("git") is None:
        return None
    out = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.strip()
    return out.stdout.strip() + ("+uncommitted changes" if dirty else "")
