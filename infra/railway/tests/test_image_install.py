"""Each image's build stage, replayed without Docker.

The files each Dockerfile COPYs (filtered by .dockerignore) go into a temporary
build directory, and its ``uv`` RUN lines run there in order, with the virtualenv
in the temporary directory instead of ``/app/.venv`` and uv's cache reused. The
resulting environment must import the service's entry point and must not contain
another service, a dev-only member or a dev dependency.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.railway.tests.railway_testkit import (
    ALL_IN_ONE_DOCKERFILE,
    APP_SERVICES,
    DEV_ONLY_PACKAGES,
    REPO,
    AppService,
    Dockerfile,
)

pytestmark = pytest.mark.slow

# Build-stage settings that only matter inside Docker: the test reuses uv's cache
# and skips bytecode compilation to stay fast.
DOCKER_ONLY_ENV = {"UV_NO_CACHE", "UV_COMPILE_BYTECODE", "UV_PROJECT_ENVIRONMENT"}


def _dockerignore_patterns() -> list[re.Pattern[str]]:
    patterns = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        regex = ""
        i = 0
        while i < len(line):
            if line.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif line.startswith("**", i):
                regex += ".*"
                i += 2
            elif line[i] == "*":
                regex += "[^/]*"
                i += 1
            elif line[i] == "?":
                regex += "[^/]"
                i += 1
            elif line[i] == "[":
                end = line.index("]", i)
                regex += line[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(line[i])
                i += 1
        patterns.append(re.compile(regex))
    return patterns


def _ignored(relative: Path, patterns: list[re.Pattern[str]]) -> bool:
    """Docker excludes a path when it, or a folder above it, matches a pattern."""
    parts = relative.parts
    return any(p.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1) for p in patterns)


def _copy_from_context(
    source: str, destination: Path, into_dir: bool, patterns: list[re.Pattern[str]]
) -> None:
    """Docker's COPY: a folder's contents go to ``destination``; a file goes into it
    when the destination ends with "/", else becomes it."""
    src = REPO / source
    assert not _ignored(Path(source), patterns), f"{source} is excluded by .dockerignore"
    if src.is_file():
        target = destination / src.name if into_dir else destination
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        return
    for path in src.rglob("*"):
        if path.is_file() and not _ignored(path.relative_to(REPO), patterns):
            target = destination / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


@dataclass(frozen=True)
class BuiltEnv:
    root: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.root),
            # Importing connects to nothing; closed ports make sure of it.
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
            "REDIS_URL": "redis://127.0.0.1:9/0",
        }

    def run_python(self, code: str, *args: str) -> subprocess.CompletedProcess[str]:
        # -I: no PYTHONPATH, no user site, no current directory; only the virtualenv.
        return subprocess.run(
            [str(self.python), "-I", "-c", code, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def replay_build_stage(dockerfile: Dockerfile, root: Path) -> BuiltEnv:
    src_dir = root / "src"
    src_dir.mkdir()
    venv = root / "venv"
    image_venv = dockerfile.env("build")["UV_PROJECT_ENVIRONMENT"]
    base_python = (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    )
    env = {
        **os.environ,
        **dockerfile.args(),
        **{k: v for k, v in dockerfile.env("build").items() if k not in DOCKER_ONLY_ENV},
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": str(base_python),
    }
    env.pop("VIRTUAL_ENV", None)
    patterns = _dockerignore_patterns()
    for ins in dockerfile.stage("build"):
        if ins.keyword == "COPY":
            flags, words = ins.flags_and_rest()
            assert "from" not in flags
            *sources, dest = words
            into_dir = dest.endswith("/") or dest == "." or len(sources) > 1
            for source in sources:
                _copy_from_context(source, src_dir / dest, into_dir, patterns)
        elif ins.keyword == "RUN":
            if ins.args.startswith("pip install") and "uv==" in ins.args:
                continue  # uv is already here
            if ins.args.startswith("apt-get update"):
                continue  # the build tools (binutils) are the machine's own
            command = ins.args.replace(image_venv, str(venv))
            result = subprocess.run(
                ["/bin/sh", "-c", command],
                cwd=src_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    return BuiltEnv(root, venv)


PROBE = """
import importlib, importlib.util, json, sys
report = {"entries": {}, "present": []}
for entry in json.loads(sys.argv[1]):
    module_name, _, attribute = entry.partition(":")
    module = importlib.import_module(module_name)
    report["entries"][entry] = {
        "type": type(getattr(module, attribute)).__name__,
        "file": module.__file__,
    }
report["present"] = [name for name in json.loads(sys.argv[2]) if importlib.util.find_spec(name)]
print(json.dumps(report))
"""


def probe(built: BuiltEnv, entries: list[str], absent: list[str]) -> dict[str, object]:
    result = built.run_python(PROBE, json.dumps(entries), json.dumps(absent))
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, object] = json.loads(result.stdout)
    return report


@pytest.fixture(scope="module")
def built_images(
    tmp_path_factory: pytest.TempPathFactory, dockerfiles: dict[str, Dockerfile]
) -> dict[str, BuiltEnv]:
    return {
        name: replay_build_stage(dockerfile, tmp_path_factory.mktemp(name))
        for name, dockerfile in dockerfiles.items()
    }


def test_image_has_its_service_and_nothing_else(
    built_images: dict[str, BuiltEnv], app_service: AppService
) -> None:
    built = built_images[app_service.name]
    others = [s.package for s in APP_SERVICES if s is not app_service]
    report = probe(built, [app_service.entry], [*others, *DEV_ONLY_PACKAGES, "pytest"])
    assert report["present"] == [], "other services, dev-only members or dev dependencies"
    entries = report["entries"]
    assert isinstance(entries, dict)
    entry = entries[app_service.entry]
    kinds = {"roadmap-api": "FastAPI", "roadmap-web": "Starlette"}
    assert entry["type"] == kinds.get(app_service.name, "Celery")
    # Installed as a package (non-editable), not pointing back into a source tree.
    assert entry["file"].startswith(str(built.venv))
    served = app_service.name in kinds  # an ASGI app under uvicorn
    expected = {
        "uvicorn": served,
        # The web UI has no database and no queue: it talks to the API only.
        "celery": app_service.name != "roadmap-web",
        "roadmap-db": app_service.name != "roadmap-web",
    }
    for command, present in expected.items():
        assert (built.venv / "bin" / command).exists() == present, command


def test_api_image_can_run_the_pre_deploy_migration_command(
    built_images: dict[str, BuiltEnv],
) -> None:
    built = built_images["roadmap-api"]
    heads = subprocess.run(
        [str(built.venv / "bin" / "roadmap-db"), "heads"],
        cwd=built.root,
        env=built.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert heads.returncode == 0, heads.stderr
    versions = REPO / "libs" / "db" / "src" / "roadmap_db" / "migrations" / "versions"
    revisions = {
        m.group(1)
        for path in versions.glob("*.py")
        if (m := re.search(r'^revision\b[^=]*=\s*"([^"]+)"', path.read_text(), re.MULTILINE))
    }
    assert heads.stdout.strip() in revisions


def test_all_in_one_image_has_every_role_and_no_dev_code(
    built_images: dict[str, BuiltEnv],
) -> None:
    built = built_images["all-in-one"]
    report = probe(built, [s.entry for s in APP_SERVICES], [*DEV_ONLY_PACKAGES, "pytest"])
    assert report["present"] == []
    flower = built.run_python("import flower, tornado; print(flower.__version__)")
    assert flower.returncode == 0, flower.stderr
    assert flower.stdout.strip() == Dockerfile(ALL_IN_ONE_DOCKERFILE).args()["FLOWER_VERSION"]
