"""Which IP addresses the link checker may connect to (SSRF rules).

Only globally routable unicast addresses are allowed. ``ipaddress.is_global``
is the base rule (it excludes private, loopback, link-local, shared 100.64/10,
benchmarking, documentation and reserved ranges); on top of it we refuse
multicast (``is_global`` is true for global-scope multicast), the cloud
metadata endpoints that are globally routable (Azure's wire server) and any
IPv6 address that embeds an IPv4 address (mapped, compatible, NAT64, 6to4,
Teredo) whose IPv4 address would itself be refused: a request to
``::ffff:127.0.0.1`` or ``64:ff9b::a9fe:a9fe`` reaches the IPv4 host on many
networks.
"""

from __future__ import annotations

import ipaddress
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance-metadata endpoints. Most are link-local or private and refused anyway;
# they are named so the refusal says why, and so a future change to the base rule
# cannot let them through.
METADATA_ADDRESSES: Final[frozenset[IPAddress]] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean…
        "169.254.170.2",  # AWS ECS task metadata
        "168.63.129.16",  # Azure wire server (globally routable!)
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS IMDS over IPv6
    )
)

_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.ip_network("64:ff9b:1::/48")
_LOOPBACK_V4: Final = ipaddress.ip_network("127.0.0.0/8")


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's (obfuscation undone by ipaddress)
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:
        # IPv4-compatible (::a.b.c.d), deprecated but still routed by some stacks.
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_loopback(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        v4 = ip.ipv4_mapped
        return ip == ipaddress.IPv6Address("::1") or (v4 is not None and v4 in _LOOPBACK_V4)
    return ip in _LOOPBACK_V4


def refusal(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why the checker must not connect to ``ip`` (``None``: it may).

    ``allow_loopback`` admits 127.0.0.0/8 and ``::1`` (the dev stack's fake pages),
    nothing else: private and metadata addresses stay refused.
    """
    if allow_loopback and is_loopback(ip):
        return None
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_unspecified:
        return "unspecified address"
    if isinstance(ip, ipaddress.IPv6Address):
        v4 = _embedded_v4(ip)
        if v4 is not None:
            inner = refusal(v4, allow_loopback=False)
            if inner is not None:
                return f"IPv6 address embedding a refused IPv4 address ({inner})"
    if ip.is_private:
        return "private address"
    if ip.is_reserved:
        return "reserved address"
    if not ip.is_global:
        return "not a globally routable address"
    return None


def parse_address(text: str) -> IPAddress:
    """An address from ``getaddrinfo`` (an IPv6 scope id, ``%eth0``, is dropped)."""
    return ipaddress.ip_address(text.split("%", 1)[0])
