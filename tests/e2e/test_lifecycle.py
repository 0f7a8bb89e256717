"""Start-up, auth at the handshake, and graceful shutdown that loses nothing acked."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import trio
import trio_websocket

from nochat.errors import CloseCode

from ..support import Api, HttpError, RunningServer, make_settings, start_server, ws_connect


async def test_lifecycle_shutdown_closes_1012_and_keeps_every_acked_message(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "data")
    server = await start_server(nursery, settings)
    api = Api(server.http)
    ann, bob = await api.signup("ann"), await api.signup("bob")
    acked: list[int] = []
    async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b:
        await b.join()
        for i in range(50):
            await a.say(f"keep {i}")
        for _ in range(50):
            acked.append((await a.expect("ack"))["seq"])
        async with trio.open_nursery() as stopping:
            stopping.start_soon(server.stop)
            assert await a.closed() == CloseCode.RESTART
            assert await b.closed() == CloseCode.RESTART
    restarted = await start_server(nursery, settings.replace(port=0))
    ann.base = restarted.http
    page = await ann.get("/api/rooms/general/messages?limit=200")
    assert [m["seq"] for m in page["messages"]] == sorted(acked) == list(range(1, 51))


async def test_lifecycle_subprotocol_bearer_is_accepted_and_never_echoed(
    server: RunningServer, api: Api
) -> None:
    ann = await api.signup("ann")
    async with ws_connect(server, None, subprotocols=["nochat.v1", f"bearer.{ann.token}"]) as a:
        assert a.conn.subprotocol == "nochat.v1"
        await a.join()


async def test_lifecycle_cookie_auth_needs_same_origin(server: RunningServer, api: Api) -> None:
    ann = await api.signup("ann")
    cookie = (b"Cookie", f"nochat_session={ann.token}".encode())
    own = (b"Origin", server.http.encode())
    async with ws_connect(server, None, headers=[cookie, own]) as a:
        await a.join()
    for origin in ([(b"Origin", b"http://evil.example")], []):
        with pytest.raises(trio_websocket.ConnectionRejected) as caught:
            async with ws_connect(server, None, headers=[cookie, *origin]):
                pass
        assert caught.value.status_code == 403


async def test_lifecycle_login_sets_httponly_cookie_and_logout_ends_the_token(
    server: RunningServer, api: Api
) -> None:
    await api.post("/api/users", {"name": "ann", "password": "long enough"})
    body = json.dumps({"name": "ann", "password": "long enough"}).encode()
    req = urllib.request.Request(
        f"{server.http}/api/sessions",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )

    def login() -> tuple[dict[str, object], str]:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read()), resp.headers["Set-Cookie"]

    session, cookie = await trio.to_thread.run_sync(login)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "nochat_session=" in cookie
    ann = Api(server.http, str(session["token"]))
    assert (await ann.get("/api/me"))["name"] == "ann"
    await ann.call("DELETE", "/api/sessions")
    with pytest.raises(trio_websocket.ConnectionRejected) as caught:
        async with ws_connect(server, ann.token):
            pass
    assert caught.value.status_code == 401


async def test_lifecycle_health_ready_metrics_and_security_headers(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await start_server(nursery, make_settings(tmp_path / "d", metrics_token="m-s3cret"))
    api = Api(server.http)
    assert await api.get("/healthz") == {"status": "ok"}
    assert await api.get("/readyz") == {"status": "ready", "store": "ok"}

    def fetch(path: str) -> tuple[str, dict[str, str]]:
        req = urllib.request.Request(
            server.http + path, headers={"Authorization": "Bearer m-s3cret"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read().decode(), {k.lower(): v for k, v in resp.headers.items()}

    text, headers = await trio.to_thread.run_sync(fetch, "/metrics")
    assert "nochat_connections 0.0" in text and "nochat_store_commits_total" in text
    assert headers["x-content-type-options"] == "nosniff"


async def test_lifecycle_metrics_need_the_metrics_token(
    nursery: trio.Nursery, tmp_path: Path, server: RunningServer
) -> None:
    # Unconfigured (the default): there are no metrics to see.
    with pytest.raises(HttpError) as caught:
        await Api(server.http).get("/metrics")
    assert caught.value.status == 404
    configured = await start_server(
        nursery, make_settings(tmp_path / "m", metrics_token="m-s3cret")
    )
    user = await Api(configured.http).signup("ann")  # a user's token is not the metrics token
    for api in (Api(configured.http), Api(configured.http, "m-s3cre"), user):
        with pytest.raises(HttpError) as caught:
            await api.get("/metrics")
        assert (caught.value.status, caught.value.body["error"]["code"]) == (401, "unauthorized")


async def test_lifecycle_stats_need_a_session(server: RunningServer, api: Api) -> None:
    with pytest.raises(HttpError) as caught:
        await api.get("/api/stats")
    assert caught.value.status == 401
    ann = await api.signup("ann")
    assert (await ann.get("/api/stats"))["rooms"] == 1


async def _handshake_headers(server: RunningServer, token: str) -> dict[bytes, bytes]:
    """A raw upgrade request offering permessage-deflate; the response's headers."""
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        request = (
            "GET /ws HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        )
        await stream.send_all(request.encode())
        data = b""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(4096)
    head = data.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0].startswith(b"HTTP/1.1 101")
    return {k.strip().lower(): v.strip() for k, v in (line.split(b":", 1) for line in head[1:])}


@pytest.mark.parametrize("compression", [False, True])
async def test_lifecycle_compression_setting_decides_permessage_deflate(
    nursery: trio.Nursery, tmp_path: Path, compression: bool
) -> None:
    settings = make_settings(tmp_path / "d", websocket_compression=compression)
    server = await start_server(nursery, settings)
    ann = await Api(server.http).signup("ann")
    headers = await _handshake_headers(server, ann.token)
    offered = headers.get(b"sec-websocket-extensions", b"")
    assert offered.startswith(b"permessage-deflate") is compression


def test_lifecycle_hypercorn_config_carries_nochat_settings(tmp_path: Path) -> None:
    from nochat.server import hypercorn_config

    settings = make_settings(tmp_path, listen_backlog=1234, max_frame_bytes=2048)
    config = hypercorn_config(settings)
    assert (config.backlog, config.websocket_max_message_size) == (1234, 2048)
    assert config.websocket_ping_interval is None and config.websocket_compression is False


async def test_lifecycle_plain_hypercorn_cli_serves_the_app_from_env(tmp_path: Path) -> None:
    """`hypercorn --worker-class trio nochat.asgi:app`, configured by NOCHAT_* only."""
    with socket.socket() as probe:  # a free port for the CLI (it takes no port 0 report)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "NOCHAT_DATA_DIR": str(tmp_path / "d"), "NOCHAT_PASSWORD_HASHING": "fast"}
    cmd = [sys.executable, "-m", "hypercorn", "--worker-class", "trio"]
    cmd += ["--bind", f"127.0.0.1:{port}", "nochat.asgi:app"]
    proc = await trio.lowlevel.open_process(cmd, env=env, stderr=subprocess.DEVNULL)
    try:
        api = Api(f"http://127.0.0.1:{port}")
        with trio.fail_after(20):
            while True:  # polling a child process's readiness, not an event of ours
                try:
                    assert await api.get("/healthz") == {"status": "ok"}
                    break
                except (OSError, HttpError):
                    await trio.sleep(0.1)
        user = await api.post("/api/users", {"name": "cli", "password": "long enough"})
        assert user["name"] == "cli"
        assert (tmp_path / "d" / "nochat.sqlite3").exists()
    finally:
        proc.terminate()
        with trio.fail_after(10):
            await proc.wait()


def _break_message_inserts(db_path: Path, broken: bool) -> None:
    """Make every message insert fail inside SQLite (a trigger), or mend it again."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        if broken:
            conn.execute(
                "CREATE TRIGGER broken_disk BEFORE INSERT ON events "
                "BEGIN SELECT RAISE(ABORT, 'the disk is on fire'); END"
            )
        else:
            conn.execute("DROP TRIGGER broken_disk")
    finally:
        conn.close()


async def test_lifecycle_store_failure_is_unavailable_and_a_retry_lands_once(
    server: RunningServer, api: Api
) -> None:
    """A failing store answers the documented, retryable `unavailable` on both paths."""
    ann = await api.signup("ann")
    _break_message_inserts(server.settings.db_path, broken=True)
    async with ws_connect(server, ann.token) as a:
        await a.join()
        await a.say("lost?", client_id="c1")
        error = await a.expect("error")
        assert error["code"] == "unavailable", error
        with pytest.raises(HttpError) as caught:
            await ann.post("/api/rooms/general/messages", {"text": "rest", "client_id": "c2"})
        assert caught.value.status == 503
        assert caught.value.body["error"]["code"] == "unavailable"
        _break_message_inserts(server.settings.db_path, broken=False)
        await a.say("lost?", client_id="c1")  # what the client does: the same client_id again
        assert (await a.expect("ack"))["seq"] == 1
    page = await ann.get("/api/rooms/general/messages")
    assert [m["text"] for m in page["messages"]] == ["lost?"]
