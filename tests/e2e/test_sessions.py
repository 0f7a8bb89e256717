"""Sessions on live sockets: expiry and logout close with 4001; refresh extends; CSRF."""

from __future__ import annotations

import http.client
import json
import logging
import urllib.request
from pathlib import Path

import pytest
import trio
import trio_websocket

from nochat.errors import CloseCode

from ..support import Api, HttpError, RunningServer, make_settings, start_server, ws_connect


async def test_sessions_expired_token_closes_live_socket_4001(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    # Time itself is under test here: a session that lives half a second.
    server = await start_server(nursery, make_settings(tmp_path / "d", token_ttl_s=0.5))
    ann = await Api(server.http).signup("ann")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        assert await a.closed() == CloseCode.TOKEN_EXPIRED
    with pytest.raises(HttpError) as caught:
        await ann.get("/api/me")
    assert caught.value.body["error"]["code"] == "token_expired"


async def test_sessions_logout_closes_its_sockets_and_refuses_the_token(
    server: RunningServer, api: Api
) -> None:
    ann = await api.signup("ann")
    other = await api.signup("bob")
    async with (
        ws_connect(server, ann.token) as a1,
        ws_connect(server, ann.token) as a2,
        ws_connect(server, other.token) as b,
    ):
        await b.join()
        await a1.join()
        await ann.call("DELETE", "/api/sessions")
        assert await a1.closed() == CloseCode.TOKEN_EXPIRED
        assert await a2.closed() == CloseCode.TOKEN_EXPIRED
        await b.say("bob stays")
        await b.expect("ack")
    with pytest.raises(HttpError) as caught:
        await ann.get("/api/me")
    assert (caught.value.status, caught.value.body["error"]["code"]) == (401, "token_revoked")
    with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
        async with ws_connect(server, ann.token):
            pass
    assert rejected.value.status_code == 401


async def test_sessions_refresh_extends_the_session_and_its_sockets(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await start_server(nursery, make_settings(tmp_path / "d", token_ttl_s=1.0))
    ann = await Api(server.http).signup("ann")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        renewed = await ann.post("/api/sessions/refresh", {})
        assert renewed["token"] != ann.token and renewed["user"]["name"] == "ann"
        ann.token = renewed["token"]
        for _ in range(3):  # outlive the first expiry twice over, refreshing as a client would
            with trio.move_on_after(0.6):
                assert await a.closed() == CloseCode.TOKEN_EXPIRED  # must not happen
                pytest.fail("the refreshed socket was closed")
            ann.token = (await ann.post("/api/sessions/refresh", {}))["token"]
        await a.say("alive")
        await a.expect("ack")
    assert (await ann.get("/api/me"))["name"] == "ann"


async def test_sessions_cookie_changes_need_an_allowed_origin(
    server: RunningServer, api: Api
) -> None:
    token = (await api.signup("ann")).token
    body = json.dumps({"text": "via cookie", "client_id": "ck"}).encode()

    def post(origin: str | None) -> int:
        headers = {"Cookie": f"nochat_session={token}", "Content-Type": "application/json"}
        if origin:
            headers["Origin"] = origin
        req = urllib.request.Request(
            f"{server.http}/api/rooms/general/messages", data=body, method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert await trio.to_thread.run_sync(post, "http://evil.example") == 403
    assert await trio.to_thread.run_sync(post, None) == 403
    assert await trio.to_thread.run_sync(post, server.http) == 200
    history = await Api(server.http, token).get("/api/rooms/general/messages")
    assert [m["text"] for m in history["messages"]] == ["via cookie"]


async def test_sessions_allowed_origins_setting_admits_another_origin(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "d", allowed_origins=("https://chat.example",))
    server = await start_server(nursery, settings)
    ann = await Api(server.http).signup("ann")
    cookie = (b"Cookie", f"nochat_session={ann.token}".encode())
    async with ws_connect(
        server, None, headers=[cookie, (b"Origin", b"https://chat.example")]
    ) as a:
        await a.join()
    with pytest.raises(trio_websocket.ConnectionRejected) as caught:
        async with ws_connect(server, None, headers=[cookie, (b"Origin", b"https://x.example")]):
            pass
    assert caught.value.status_code == 403


async def _hammer(api: Api, stop: trio.Event) -> None:
    """GET /api/me as fast as one client can until `stop`; 200 or 401 both fine here."""
    while not stop.is_set():
        try:
            await api.get("/api/me")
        except HttpError as exc:
            assert exc.status == 401


async def test_sessions_logout_wins_over_requests_in_flight(
    server: RunningServer, api: Api
) -> None:
    """Requests racing a logout never bring the session back (REST 401, /ws refused)."""
    for round_ in range(8):  # one round catches the old race about half the time
        ann = await api.signup(f"ann{round_}")
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(_hammer, ann, stop)
            await ann.get("/api/me")
            await ann.call("DELETE", "/api/sessions")
            for _ in range(20):
                with pytest.raises(HttpError) as caught:
                    await ann.get("/api/me")
                assert caught.value.body["error"]["code"] == "token_revoked"
                with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
                    async with ws_connect(server, ann.token):
                        pass
                assert rejected.value.status_code == 401
            stop.set()


async def test_sessions_logout_logs_no_error_and_keeps_the_connection(
    server: RunningServer, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    ann = await api.signup("ann")

    def logout_then_reuse() -> tuple[int, bytes, int]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request(
                "DELETE", "/api/sessions", headers={"Authorization": f"Bearer {ann.token}"}
            )
            first = conn.getresponse()
            body = first.read()
            conn.request("GET", "/healthz")  # the same keep-alive connection
            second = conn.getresponse()
            second.read()
            return first.status, body, second.status
        finally:
            conn.close()

    with caplog.at_level(logging.WARNING):
        status, body, after = await trio.to_thread.run_sync(logout_then_reuse)
    assert (status, body, after) == (204, b"", 200)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def _variants(token: str) -> dict[str, str]:
    """Spellings of the same bytes (or with junk added) that a lax decoder would accept."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    body, signature = token.split(".")
    # 32 signature bytes are 43 characters: the last one carries 2 unused (zero) bits.
    last = alphabet[alphabet.index(signature[-1]) ^ 1]
    return {
        "padding bit": f"{body}.{signature[:-1]}{last}",
        "signature !!": f"{body}.{signature}!!",
        "signature ==": f"{body}.{signature}==",
        "signature =": f"{body}.{signature}=",
        "body ==": f"{body}==.{signature}",
        "inner space": f"{body}.{signature[:10]} {signature[10:]}",
    }


async def test_sessions_tokens_are_not_malleable(api: Api) -> None:
    ann = await api.signup("ann")
    assert (await ann.get("/api/me"))["name"] == "ann"
    for name, variant in _variants(ann.token).items():
        with pytest.raises(HttpError) as caught:
            await Api(api.base, variant).get("/api/me")
        assert (caught.value.status, caught.value.body["error"]["code"]) == (
            401,
            "invalid_token",
        ), name
