"""The CI check that starts each service on its runtime dependencies alone (`.ci/service_check.py`).

`.ci/run` runs it for every service; here its failure paths are checked on small fakes.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from infra.railway.tests.railway_testkit import REPO, VENV_BIN

SCRIPT = REPO / ".ci" / "service_check.py"


@pytest.fixture(scope="module")
def check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("service_check_under_test", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [n for n in sys.modules if n.split(".")[0] in {"fakesvc", "fakeweb"}]:
        del sys.modules[name]


def test_a_module_needing_an_undeclared_package_fails_by_name(
    check: ModuleType, fake_packages: Path
) -> None:
    package = fake_packages / "fakesvc"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fine.py").write_text("import json\n")
    (package / "__main__.py").write_text("raise SystemExit('must not run')\n")
    (package / "sub").mkdir()
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "leans.py").write_text("import a_dependency_nobody_declared\n")
    with pytest.raises(check.CheckFailed, match=r"fakesvc\.sub\.leans.*a_dependency_nobody"):
        check.import_everything(["fakesvc"])
    (package / "sub" / "leans.py").unlink()
    assert check.import_everything(["fakesvc"]) == 3  # fakesvc, fine, sub; never __main__


def test_dev_dependencies_in_the_environment_are_refused(check: ModuleType) -> None:
    with pytest.raises(check.CheckFailed, match="pytest"):
        check.check_no_dev_dependencies(["pytest", "a_package_that_is_not_there"])
    check.check_no_dev_dependencies(["a_package_that_is_not_there"])


def test_a_service_that_never_gets_ready_fails_with_its_log(
    check: ModuleType, fake_packages: Path
) -> None:
    (fake_packages / "fakeweb.py").write_text(
        textwrap.dedent(
            """\
            print("fakeweb: database unreachable", flush=True)

            async def app(scope, receive, send):
                if scope["type"] != "http":
                    return
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b"not ready"})
            """
        )
    )
    env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "PYTHONPATH": str(fake_packages)}
    with pytest.raises(check.CheckFailed, match=r"not ready within 3s(.|\n)*database unreachable"):
        check.start_and_wait("fakeweb", "fakeweb:app", VENV_BIN, env, timeout=3)
