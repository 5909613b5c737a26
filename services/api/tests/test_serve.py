"""The API's one launcher (``roadmap-api`` / ``python -m roadmap_api``)."""

from __future__ import annotations

import pytest
import uvicorn

from roadmap_api import serve
from roadmap_api.http_limits import LimitedHttpToolsProtocol


def test_every_command_line_serves_the_api_with_its_http_limits() -> None:
    for argv in ([], ["--workers", "3", "--port", "9001"], ["--app", "bench.bare:app"]):
        assert serve.run_options(argv)["http"] is LimitedHttpToolsProtocol
    options = serve.run_options([])
    assert options["app"] == serve.APP == "roadmap_api.main:app"
    assert (options["host"], options["port"], options["proxy_headers"]) == ("127.0.0.1", 8000, True)
    assert options["access_log"] is True


def test_the_deployment_options_reach_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = [
        "--host", "0.0.0.0", "--port", "8123", "--workers", "3", "--no-proxy-headers",
        "--timeout-graceful-shutdown", "20", "--no-access-log",
    ]  # fmt: skip
    config = uvicorn.Config(**serve.run_options(argv))
    assert (config.host, config.port, config.workers) == ("0.0.0.0", 8123, 3)
    assert config.http is LimitedHttpToolsProtocol
    assert (config.proxy_headers, config.access_log) == (False, False)
    assert config.timeout_graceful_shutdown == 20
    # Without --workers, uvicorn's own default: WEB_CONCURRENCY, as the images set it.
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    assert uvicorn.Config(**serve.run_options([])).workers == 4


def test_a_bad_option_is_refused_before_anything_starts() -> None:
    with pytest.raises(SystemExit) as refused:
        serve.run_options(["--workers", "two"])
    assert refused.value.code == 2
