"""The SSRF address rules and the guarded backend's resolution (no network traffic)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from roadmap_core.search.addresses import parse_address, refusal
from roadmap_core.search.guard import BlockedAddress, GuardedBackend

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # metadata (link-local)
    "169.254.1.1",
    "100.100.100.200",  # Alibaba metadata, in 100.64/10
    "100.64.0.1",
    "168.63.129.16",  # Azure wire server: globally routable, still refused
    "0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "192.0.2.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS IMDS over IPv6
    "ff02::1",
    "ff0e::1",  # global-scope multicast
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "2001:db8::1",
]
ALLOWED = ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::1"]


@pytest.mark.parametrize("address", REFUSED)
def test_refused(address: str) -> None:
    assert refusal(parse_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_allowed(address: str) -> None:
    assert refusal(parse_address(address)) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
def test_loopback_allowed_only_when_asked(address: str) -> None:
    assert refusal(parse_address(address)) is not None
    assert refusal(parse_address(address), allow_loopback=True) is None


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "169.254.169.254", "192.168.0.1", "fd00:ec2::254", "0.0.0.0"]
)
def test_allowing_loopback_allows_nothing_else(address: str) -> None:
    assert refusal(parse_address(address), allow_loopback=True) is not None


def test_metadata_named_in_the_reason() -> None:
    assert refusal(parse_address("169.254.169.254")) == "cloud metadata address"


def test_scope_ids_are_dropped() -> None:
    assert refusal(parse_address("fe80::1%eth0")) == "link-local address"


def _fake_resolver(answers: dict[str, list[str]]) -> Any:
    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port),
            )
            for a in answers[host]
        ]

    return getaddrinfo


def test_every_answer_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name with one public and one private address is refused, whatever the order."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(
            loop,
            "getaddrinfo",
            _fake_resolver(
                {
                    "mixed.test": ["93.184.215.14", "10.0.0.7"],
                    "public.test": ["93.184.215.14", "2606:4700:4700::1111"],
                    "mapped.test": ["::ffff:169.254.169.254"],
                }
            ),
        )
        backend = GuardedBackend()
        with pytest.raises(BlockedAddress, match="private address"):
            await backend.resolve("mixed.test", 80)
        with pytest.raises(BlockedAddress, match="embedding"):
            await backend.resolve("mapped.test", 80)
        assert await backend.resolve("public.test", 80) == "93.184.215.14"

    asyncio.run(main())


def test_unix_sockets_refused() -> None:
    async def main() -> None:
        with pytest.raises(BlockedAddress):
            await GuardedBackend(allow_loopback=True).connect_unix_socket("/tmp/x.sock")

    asyncio.run(main())
