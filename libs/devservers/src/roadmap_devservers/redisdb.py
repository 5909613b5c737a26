"""A Redis database index per test session on a shared server (TEST_REDIS_URL).

A session claims index n (1-15) with `SET key token NX PX ttl` on a marker key kept in db 0,
and a background thread keeps extending it. A session that dies stops refreshing, so its
claim expires and the next session may take (and flush) that index.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator

import redis

from roadmap_devservers.errors import DevServerError
from roadmap_devservers.urls import redact, with_path

log = logging.getLogger(__name__)

CLAIM_KEY = "roadmap-devservers:db-claim:{index}"
_REFRESH = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


@contextlib.contextmanager
def claimed_redis_db(server_url: str, *, ttl: float = 60.0, wait: float = 120.0) -> Iterator[str]:
    """Claim a free db index 1-15 on a shared server; yield its URL, flushed before and after."""
    admin = redis.Redis.from_url(with_path(server_url, "0"))
    token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    ttl_ms = int(ttl * 1000)
    try:
        index = _acquire(admin, token, ttl_ms, wait, server_url)
        key = CLAIM_KEY.format(index=index)
        stop = threading.Event()
        refresher = threading.Thread(
            target=_refresh_until, args=(admin, key, token, ttl_ms, stop), daemon=True
        )
        refresher.start()
        url = with_path(server_url, str(index))
        try:
            with owned_redis_db(url):
                yield url
        finally:
            stop.set()
            refresher.join()
            admin.eval(_RELEASE, 1, key, token)
    finally:
        admin.close()


@contextlib.contextmanager
def owned_redis_db(url: str) -> Iterator[str]:
    """Yield `url`, flushing its database before and after (we own it for the session)."""
    _flush(url)
    try:
        yield url
    finally:
        _flush(url)


def _flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def _database_count(admin: redis.Redis) -> int:
    try:
        reply = admin.config_get("databases")
        return int(reply.get("databases") or 16)
    except redis.ResponseError:  # CONFIG disabled (managed Redis): assume the default
        return 16


def _acquire(admin: redis.Redis, token: str, ttl_ms: int, wait: float, server_url: str) -> int:
    candidates = range(1, min(16, _database_count(admin)))
    deadline = time.monotonic() + wait
    while True:
        for index in candidates:
            if admin.set(CLAIM_KEY.format(index=index), token, nx=True, px=ttl_ms):
                log.info("claimed Redis db %d on %s", index, redact(server_url))
                return index
        if time.monotonic() > deadline:
            raise DevServerError(
                f"all Redis db indexes {candidates.start}-{candidates.stop - 1} on "
                f"{redact(server_url)} are claimed by other test sessions; wait for them or "
                f"delete the stale '{CLAIM_KEY.format(index='*')}' keys in db 0"
            )
        time.sleep(0.5)


def _refresh_until(
    admin: redis.Redis, key: str, token: str, ttl_ms: int, stop: threading.Event
) -> None:
    while not stop.wait(ttl_ms / 3000):
        try:
            if not admin.eval(_REFRESH, 1, key, token, ttl_ms):
                log.warning("lost the claim %s (expired while we were stalled?)", key)
        except redis.RedisError:  # server restarting; the next round retries
            log.warning("could not refresh the claim %s", key, exc_info=True)
