"""One stack for the browser tests of this folder: API, both workers, fake LLM (writing hostile
Markdown into every tutorial), the web UI, and one headless Chromium (Debian's package,
driven by Playwright; Playwright cannot download its own browser here).

axe-core comes from its npm package (``npm install --no-package-lock`` in this folder, as
``.ci/run`` does). Without Chromium or axe-core the tests are skipped locally and fail in
CI (``CI`` set), where ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DEFAULT_FAKE
from tests.support.capture import Capture
from tests.support.processes import ManagedProcess, free_port, wait_until
from tests.support.sentinels import SessionSecrets
from tests.support.stack import INHERITED, FakeLLMProcess, Stack

HERE = Path(__file__).parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = HERE.parent.parent / "docs" / "screenshots"


def chromium_path() -> str | None:
    # Debian's package here and in .ci/run; GitHub's runner images ship Google Chrome.
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _require(condition: bool, why: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI must run the browser tests)")
    pytest.skip(why)


class WebProcess(ManagedProcess):
    """``uvicorn roadmap_web.app:app`` as its image runs it, against the stack's API."""

    def __init__(self, api_url: str, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: os.environ[k] for k in INHERITED if k in os.environ}
        env.update(
            {
                "APP_ENV": "test",
                "API_URL": api_url,
                "WEB_SECRET_KEY": secrets.token_hex(32),
                "PYTHONUNBUFFERED": "1",
            }
        )
        argv = [
            sys.executable, "-m", "uvicorn", "roadmap_web.app:app", "--host", "127.0.0.1",
            "--port", str(self.port), "--no-access-log",
        ]  # fmt: skip
        super().__init__("web", argv, env, log_dir)

    def wait_ready(self, timeout: float = 30.0) -> None:
        def up() -> bool:
            if not self.running:
                raise AssertionError(f"the web service exited early:\n{self.log()}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout, "the web service")


@dataclass
class WebStack:
    stack: Stack
    web: WebProcess

    @property
    def url(self) -> str:
        return self.web.url


@pytest.fixture(scope="module")
def web_stack(
    migrated_url: str,
    redis_url: str,
    fake_llm_process: FakeLLMProcess,
    session_secrets: SessionSecrets,
    capture: Capture,
) -> Iterator[WebStack]:
    fake = fake_llm_process.fake
    fake.configure(**{**DEFAULT_FAKE, "hostile_markdown": True})
    fake.reset()
    stack = Stack(
        database_url=migrated_url,
        redis_url=redis_url,
        fake=fake,
        secrets=session_secrets,
        capture=capture,
    )
    web: WebProcess | None = None
    try:
        stack.start(chat_worker=True)
        assert stack.api is not None
        web = WebProcess(stack.api.url, capture.log_dir)
        stack.processes.append(web)
        web.wait_ready()
        yield WebStack(stack, web)
    finally:
        stack.stop()
        fake.configure(**DEFAULT_FAKE)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    _require(executable is not None, "no chromium on PATH (apt-get install -y chromium)")
    _require(AXE.is_file(), f"no {AXE} (npm install --no-package-lock in tests/browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(browser: Any, web_stack: WebStack) -> Iterator[Any]:
    """``new_page()`` → a page in a fresh browser context (its own cookies)."""
    contexts: list[Any] = []

    def make() -> Any:
        # bypass_csp: axe-core is injected as an inline script, which the site's CSP (rightly)
        # refuses; it also means the sanitizer alone has to make hostile Markdown inert.
        context = browser.new_context(
            base_url=web_stack.url, viewport={"width": 1000, "height": 720}, bypass_csp=True
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def axe_check(page: Any) -> None:
    """No serious or critical accessibility violation on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"axe on {page.url}:\n" + "\n".join(bad)


def screenshot(page: Any, name: str, show: Any = None) -> None:
    """With ``UPDATE_SCREENSHOTS=1``, the README's picture of this page (docs/screenshots),
    scrolled to ``show`` (a locator) or to the top."""
    if os.environ.get("UPDATE_SCREENSHOTS") != "1":
        return
    if show is None:
        page.evaluate("() => window.scrollTo(0, 0)")
    else:
        show.evaluate("el => el.scrollIntoView({block: 'start'})")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
