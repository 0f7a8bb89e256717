"""The client's address, for every caller that keys a limit on it (login, sign-up).

Behind a reverse proxy every request comes from the proxy's address, so the proxy's
`X-Forwarded-For` is the only way to tell clients apart; but anyone can send that
header, so it is believed only from a configured proxy (NOCHAT_TRUSTED_PROXIES).
The header is read right to left: each trusted proxy appends the address it saw, so
the first hop from the right that is not a trusted proxy is the client. Left of that,
everything was written by the client and is ignored. A trusted proxy's
`X-Forwarded-Proto` likewise says whether the client spoke HTTPS to it (Secure cookie,
HSTS).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Stands in for a peer that gave no address (a Unix socket).
UNKNOWN = "?"


class ClientAddresses:
    """`of(peer, forwarded_for)`: the address a request came from, proxies seen through."""

    def __init__(self, trusted_proxies: Sequence[str]) -> None:
        self._trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(p, strict=False) for p in trusted_proxies
        )

    def of(self, peer: str | None, forwarded_for: str | None) -> str:
        client = peer or UNKNOWN
        if not self._trusted or not forwarded_for or not self._is_trusted(client):
            return client
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            try:
                address = ipaddress.ip_address(hop)
            except ValueError:
                return client  # garbage: the last proxy we believe is as far as we can see
            client = str(address)
            if not self._is_trusted(client):
                return client
        return client

    def scheme(self, peer: str | None, scheme: str, forwarded_proto: str | None) -> str:
        """ "https" or "http" as the client used it: a trusted proxy's X-Forwarded-Proto
        (the first hop's, leftmost), else the scheme of the connection to NoChat."""
        if forwarded_proto and self._trusted and self._is_trusted(peer or UNKNOWN):
            first = forwarded_proto.split(",")[0].strip().lower()
            if first in ("http", "https"):
                return first
        return scheme

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._trusted)
