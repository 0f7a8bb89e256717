"""Chromium chatting over HTTPS and wss:// with a certificate made at test time.

Chromium trusts exactly that certificate's key (--ignore-certificate-errors-spki-list),
not every certificate: the page is a secure context and the socket is wss://.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Page, expect

from .conftest import CHROMIUM, CHROMIUM_ARGS, NochatServer
from .ui import message, send, sign_up

pytestmark = pytest.mark.browser


def spki_hash(cert_pem: bytes) -> str:
    """base64(sha256(SubjectPublicKeyInfo)): what Chromium's SPKI allowlist takes."""
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[NochatServer, str]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(certfile), append=True)
    srv = NochatServer(tmp_path / "data", tmp_path / "server.log")
    srv.env = {"NOCHAT_CERTFILE": str(certfile), "NOCHAT_KEYFILE": str(keyfile)}
    srv.url = f"https://127.0.0.1:{srv.port}"
    srv.ssl_context = ssl.create_default_context()
    ca.configure_trust(srv.ssl_context)
    srv.start()
    try:
        yield srv, spki_hash(cert.cert_chain_pems[0].bytes())
    finally:
        srv.stop()
        print(f"---- server log (tail) ----\n{srv.log()}")


@pytest.fixture
def tls_browser(playwright: Any, tls_server: tuple[NochatServer, str]) -> Iterator[Any]:
    _, spki = tls_server
    args = [*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={spki}"]
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    try:
        yield chromium
    finally:
        chromium.close()


def test_two_people_chat_over_wss(tls_browser: Any, tls_server: tuple[NochatServer, str]) -> None:
    server, _ = tls_server
    contexts = [tls_browser.new_context(base_url=server.url) for _ in range(2)]
    try:
        alice: Page = contexts[0].new_page()
        bob: Page = contexts[1].new_page()
        sockets: list[str] = []
        alice.on("websocket", lambda ws: sockets.append(ws.url))
        errors: list[str] = []
        for page in (alice, bob):
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            response = page.goto("/")
            assert response is not None
            assert response.url.startswith("https://")
            assert response.headers["strict-transport-security"].startswith("max-age=")
        assert alice.evaluate("window.isSecureContext") is True
        sign_up(alice, "alice")
        sign_up(bob, "bob")
        cookie = next(c for c in contexts[0].cookies() if c["httpOnly"])
        assert cookie["secure"] is True
        send(alice, "hello over TLS ✓")
        expect(message(bob, "hello over TLS ✓")).to_be_visible()
        send(bob, "and back " + "x" * 3000)
        expect(message(alice, "and back " + "x" * 3000)).to_be_visible()
        assert sockets
        assert all(url.startswith("wss://") for url in sockets)
        assert not errors
    finally:
        for context in contexts:
            with contextlib.suppress(Exception):
                context.close()
