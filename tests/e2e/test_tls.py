"""TLS end to end: HTTPS and wss:// through Hypercorn with a certificate made at test time."""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trustme

from nochat.errors import ConfigError
from nochat.settings import Settings

from ..support import (
    STEP_S,
    Api,
    HttpError,
    RunningServer,
    cli_env,
    free_port,
    make_settings,
    run_cli,
    start_server,
    ws_connect,
)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cert_files(ca: trustme.CA, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(keyfile))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(certfile), append=True)
    yield certfile, keyfile


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
async def tls_server(
    nursery: trio.Nursery, tmp_path: Path, cert_files: tuple[Path, Path]
) -> RunningServer:
    certfile, keyfile = cert_files
    settings = make_settings(tmp_path / "data", certfile=str(certfile), keyfile=str(keyfile))
    return await start_server(nursery, settings)


async def test_https_login_sets_a_secure_cookie_and_hsts(
    tls_server: RunningServer, client_context: ssl.SSLContext
) -> None:
    assert tls_server.http.startswith("https://")
    api = Api(tls_server.http, ssl_context=client_context)
    await api.post("/api/users", {"name": "alice", "password": "correct horse"})

    def login() -> tuple[str, str]:
        req = urllib.request.Request(
            tls_server.http + "/api/sessions",
            data=b'{"name": "alice", "password": "correct horse"}',
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=STEP_S, context=client_context) as resp:
            return resp.headers["Set-Cookie"], resp.headers["Strict-Transport-Security"]

    cookie, hsts = await trio.to_thread.run_sync(login)
    assert "Secure" in cookie.split("; ")
    assert "HttpOnly" in cookie.split("; ")
    assert hsts.startswith("max-age=")


async def test_plain_http_gets_no_hsts(server: RunningServer) -> None:
    def headers() -> str | None:
        with urllib.request.urlopen(server.http + "/healthz", timeout=STEP_S) as resp:
            return resp.headers["Strict-Transport-Security"]

    assert await trio.to_thread.run_sync(headers) is None


async def test_wss_chat_frames_arrive_intact_and_in_order(
    tls_server: RunningServer, client_context: ssl.SSLContext
) -> None:
    """Over TLS the direct writer and the takeover stand aside and the direct reader cuts
    decrypted frames: many sends, long texts and batched frames must all arrive whole."""
    api = Api(tls_server.http, ssl_context=client_context)
    alice = await api.signup("alice")
    bob = await api.signup("bob")
    # Texts long enough to span TLS records and need 16-bit frame lengths.
    texts = [f"{i:03d} " + "é✓" * (i * 10 % 1900) for i in range(150)]
    async with (
        ws_connect(tls_server, alice.token, ssl_context=client_context) as a,
        ws_connect(tls_server, bob.token, ssl_context=client_context) as b,
    ):
        await a.join()
        await b.join()
        for text in texts:
            await a.say(text)
        got = await b.messages(len(texts))
        assert tls_server.services.sockets.count == 0  # Hypercorn's TLS stream serves them
    assert [m["text"] for m in got] == texts
    # The direct writer stood aside: every event went through a write pump (and TLS).
    assert tls_server.services.hub.direct_writes == 0
    assert tls_server.services.counters.frames_out > 0
    assert [m["seq"] for m in got] == list(range(got[0]["seq"], got[0]["seq"] + len(texts)))


async def test_plain_tcp_to_the_tls_port_is_refused(tls_server: RunningServer) -> None:
    with pytest.raises((HttpError, OSError)):
        await Api(f"http://127.0.0.1:{tls_server.port}").get("/healthz")


def test_certfile_without_keyfile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="certfile and keyfile"):
        Settings.from_env({"NOCHAT_CERTFILE": "/etc/ssl/cert.pem"})


async def test_unloadable_certificate_is_one_startup_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    port = str(free_port())
    result = await run_cli(
        ["serve", "--port", port, "--certfile", missing, "--keyfile", missing],
        cli_env(tmp_path / "data"),
    )
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("nochat: cannot load TLS certificate")
