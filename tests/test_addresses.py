"""ClientAddresses: X-Forwarded-For believed only from trusted proxies, right to left."""

from __future__ import annotations

import pytest

from nochat.addresses import ClientAddresses
from nochat.errors import ConfigError
from nochat.settings import Settings


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.0.0.5", None, "10.0.0.5"),  # a trusted proxy that did not say: itself
        ("203.0.113.1", "198.51.100.2", "203.0.113.1"),  # not a proxy: header ignored
        ("10.0.0.5", "198.51.100.2", "198.51.100.2"),
        ("10.0.0.5", "1.1.1.1, 198.51.100.2", "198.51.100.2"),  # the left is the client's
        ("10.0.0.5", "198.51.100.2, 10.0.0.9", "198.51.100.2"),  # two proxies deep
        ("10.0.0.5", "10.0.0.8, 10.0.0.9", "10.0.0.8"),  # all proxies: the farthest one
        ("10.0.0.5", "junk, 10.0.0.9", "10.0.0.9"),  # garbage: as far as we can see
        ("::1", "2001:db8::7", "2001:db8::7"),
        (None, "198.51.100.2", "?"),
    ],
)
def test_addresses_forwarded_for_from_trusted_proxies(
    peer: str | None, forwarded: str | None, client: str
) -> None:
    addresses = ClientAddresses(("10.0.0.0/8", "::1"))
    assert addresses.of(peer, forwarded) == client


def test_addresses_no_trusted_proxies_never_read_the_header() -> None:
    assert ClientAddresses(()).of("127.0.0.1", "198.51.100.2") == "127.0.0.1"


def test_addresses_setting_lists_every_bad_proxy() -> None:
    env = {"NOCHAT_TRUSTED_PROXIES": "10.0.0.0/8, not-an-ip, 300.1.1.1"}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert len(caught.value.problems) == 2
    assert Settings.from_env({"NOCHAT_TRUSTED_PROXIES": "10.0.0.0/8,::1"}).trusted_proxies == (
        "10.0.0.0/8",
        "::1",
    )


@pytest.mark.parametrize(
    ("peer", "scheme", "proto", "seen"),
    [
        ("10.0.0.5", "http", "https", "https"),  # TLS ended at a trusted proxy
        ("10.0.0.5", "http", "HTTPS, http", "https"),  # the first hop's word counts
        ("10.0.0.5", "http", "gopher", "http"),  # nonsense: the connection's own
        ("10.0.0.5", "https", None, "https"),
        ("203.0.113.1", "http", "https", "http"),  # not a proxy: header ignored
    ],
)
def test_scheme_forwarded_proto_from_trusted_proxies(
    peer: str, scheme: str, proto: str | None, seen: str
) -> None:
    assert ClientAddresses(("10.0.0.0/8",)).scheme(peer, scheme, proto) == seen
    assert ClientAddresses(()).scheme(peer, scheme, proto) == scheme
