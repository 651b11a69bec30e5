"""The outbound address guard: which addresses a request the server makes for a user (a webhook, a git fetch) may reach.

Loopback, private, link-local, unique-local, multicast, reserved and cloud metadata addresses are refused
unless an allow-list lets them through: `KIKET_WEBHOOK_ALLOW_PRIVATE` for webhooks, `KIKET_GIT_ALLOWED_HOSTS`
(host names and CIDRs) for git remotes. Callers resolve a name once, check every address, and connect to a
checked address (so a DNS answer that changes in between cannot redirect them).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Iterable

METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip


def forbidden_reason(address: str) -> str | None:
    """Why an IP address may not be reached on a user's behalf, or None when it is a public address."""
    ip = _ip(address)
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    for reason, flag in (("loopback", ip.is_loopback), ("unspecified", ip.is_unspecified),
                         ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
                         ("reserved", ip.is_reserved), ("private", ip.is_private)):
        if flag:
            return f"{reason} address"
    if not ip.is_global:
        return "not a globally routable address"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order; `OSError` when it has none."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise OSError(f"{host} has no address")
    return addresses


@dataclass(frozen=True)
class AllowList:
    """Host names (exact, case-insensitive) and networks a private address is allowed in."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """From `git.internal.example`, `10.0.0.0/8`, `192.168.1.5`, `fd00::/8` entries; `ValueError` for junk."""
        hosts, networks = set(), []
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.lower().rstrip(".")
            labels = name.split(".")
            if not all(label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
                       and not label.startswith("-") for label in labels):
                raise ValueError(f"{entry!r} is neither a host name nor an address or CIDR")
            hosts.add(name)
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: str) -> bool:
        if host.lower().rstrip(".") in self.hosts:
            return True
        ip = _ip(address)
        return any(ip.version == network.version and ip in network for network in self.networks)


def refusal(host: str, addresses: Iterable[str], allow: AllowList) -> str | None:
    """Why reaching `host` at these addresses is refused (the first forbidden one not allowed), or None."""
    for address in addresses:
        reason = forbidden_reason(address)
        if reason and not allow.allows(host, address):
            return f"{host} resolves to {address}, a {reason}"
    return None
