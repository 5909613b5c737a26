"""Find the local process on the other end of a TCP connection.

Used for the ``kill`` fault and to note the client's pid in the request log.
A scan of the system's sockets costs tens of milliseconds, so lookups are
batched (one scan answers every connection waiting at that moment), cached per
connection, and run in a thread off the event loop; logging never waits for them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psutil

Peer = tuple[str, int]


def _norm(ip: str) -> str:
    return ip.removeprefix("::ffff:")


def scan_peers(server_port: int) -> dict[Peer, int]:
    """Every local client socket connected to ``server_port``, with its owning pid."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return {}
    found: dict[Peer, int] = {}
    for conn in connections:
        if conn.pid is None or not conn.laddr or not conn.raddr:
            continue
        if conn.raddr.port == server_port:
            found[(_norm(conn.laddr.ip), conn.laddr.port)] = int(conn.pid)
    return found


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


class PidResolver:
    def __init__(self) -> None:
        self._cache: dict[Peer, int] = {}
        self._waiting: dict[Peer, list[asyncio.Future[int | None]]] = {}
        self._notes: dict[Peer, list[dict[str, Any]]] = {}
        self._worker: asyncio.Task[None] | None = None
        self._server_port = 0

    def _cached(self, peer: Peer) -> int | None:
        pid = self._cache.get(peer)
        if pid is not None and not alive(pid):
            del self._cache[peer]
            return None
        return pid

    def note(self, peer: Peer, server_port: int, entry: dict[str, Any]) -> None:
        """Fill ``entry["pid"]`` now if known, else as soon as a scan finds it."""
        peer = (_norm(peer[0]), peer[1])
        pid = self._cached(peer)
        if pid is not None:
            entry["pid"] = pid
            return
        self._notes.setdefault(peer, []).append(entry)
        self._start(server_port)

    async def resolve(self, peer: Peer, server_port: int) -> int | None:
        peer = (_norm(peer[0]), peer[1])
        pid = self._cached(peer)
        if pid is not None:
            return pid
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(peer, []).append(future)
        self._start(server_port)
        return await future

    def _start(self, server_port: int) -> None:
        self._server_port = server_port
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._waiting or self._notes:
            waiting, self._waiting = self._waiting, {}
            notes, self._notes = self._notes, {}
            found = await asyncio.to_thread(scan_peers, self._server_port)
            self._cache.update(found)
            for peer, futures in waiting.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(peer))
            for peer, entries in notes.items():
                for entry in entries:
                    entry["pid"] = found.get(peer)
