"""Every limit is hit and answered as documented, and other clients are unaffected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio_websocket

from nochat.errors import CloseCode

from ..support import Api, HttpError, RunningServer, make_settings, start_server, ws_connect


async def _server(nursery: trio.Nursery, tmp_path: Path, **limits: Any) -> RunningServer:
    return await start_server(nursery, make_settings(tmp_path / "data", **limits))


async def test_limits_send_rate_answers_rate_limited_then_closes_4029(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await _server(nursery, tmp_path, send_rate_per_s=0.5, send_burst=3, rate_strikes=4)
    api = Api(server.http)
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b:
        await b.join()
        for i in range(3):
            await a.send(type="send", room="general", text=f"ok {i}", client_id=f"k{i}", ref=i)
            await a.expect("ack", ref=i)
        await a.send(type="send", room="general", text="too fast", client_id="k3", ref="x")
        error = await a.expect("error", ref="x")
        assert error["code"] == "rate_limited" and 0 < error["retry_after"] <= 2
        for i in range(3):  # strikes 2, 3, 4: the fourth in a row closes
            await a.send(type="send", room="general", text="more", client_id=f"m{i}")
        assert await a.closed() == CloseCode.RATE_LIMITED
        # bob is untouched and nothing rate-limited was stored
        got = await b.messages(3)
        assert [m["text"] for m in got] == ["ok 0", "ok 1", "ok 2"]
        await bob.post("/api/rooms/general/messages", {"text": "bob fine", "client_id": "b"})
        assert (await b.messages(1))[0]["text"] == "bob fine"
    assert (await ann.get("/api/rooms/general/messages"))["head_seq"] == 4


async def test_limits_typing_once_per_interval_per_room(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await _server(nursery, tmp_path, typing_interval_s=60.0)
    ann = await Api(server.http).signup("ann")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        await a.send(type="typing", room="general")
        assert (await a.recv())["type"] == "typing"
        # The socket's burst of two forgives jitter, but the room hears ann once an interval.
        await a.send(type="typing", room="general")
        await a.send(type="typing", room="general", ref="again")
        error = await a.recv()
        assert error["type"] == "error" and error["ref"] == "again"
        assert error["code"] == "rate_limited" and error["retry_after"] > 50


async def test_limits_typing_flood_from_many_sockets_of_few_users_is_bounded(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await _server(nursery, tmp_path, typing_interval_s=60.0)
    api = Api(server.http)
    users = [await api.signup(f"u{i}") for i in range(5)]
    watcher = await api.signup("watcher")
    async with ws_connect(server, watcher.token) as w:
        await w.join()

        async def typist(token: str, ready: trio.Event, go: trio.Event) -> None:
            async with ws_connect(server, token) as t:
                await t.join()
                ready.set()
                await go.wait()
                for _ in range(2):  # each socket's whole burst
                    await t.send(type="typing", room="general")
                await t.say("flushed")  # frames are handled in order: typing went first
                await t.expect("ack")

        go, readies = trio.Event(), []
        async with trio.open_nursery() as typers:
            for user in users:
                for _ in range(4):  # 20 sockets, 40 typing frames
                    ready = trio.Event()
                    readies.append(ready)
                    typers.start_soon(typist, user.token, ready, go)
            with trio.fail_after(10):
                for ready in readies:
                    await ready.wait()
            go.set()
        # Every typist's frames were handled (each got its ack): count what the watcher saw.
        typing: list[str] = []
        messages = 0
        while messages < len(readies):
            event = await w.recv()
            if event["type"] == "typing":
                typing.append(event["user"])
            elif event["type"] == "message":
                messages += 1
    assert sorted(typing) == [f"u{i}" for i in range(5)]  # one per user, not 40


async def test_limits_join_rate(nursery: trio.Nursery, tmp_path: Path) -> None:
    server = await _server(nursery, tmp_path, join_rate_per_s=0.1, join_burst=2)
    ann = await Api(server.http).signup("ann")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        await a.send(type="leave", room="general")
        await a.expect("left")
        await a.send(type="join", room="general", ref="j")
        assert (await a.expect("error", ref="j"))["code"] == "rate_limited"


async def test_limits_frame_flood_of_garbage_is_throttled(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await _server(nursery, tmp_path, frame_rate_per_s=1.0, frame_burst=5, rate_strikes=3)
    ann = await Api(server.http).signup("ann")
    async with ws_connect(server, ann.token) as a:
        for _ in range(5):
            await a.send_raw("{garbage")
            assert (await a.recv())["code"] == "bad_json"
        await a.send_raw("{garbage")
        assert (await a.recv())["code"] == "rate_limited"
        for _ in range(2):
            await a.send(type="pong")
        assert await a.closed() == CloseCode.RATE_LIMITED


async def test_limits_connections_per_user_429_and_server_wide_503(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await _server(nursery, tmp_path, max_connections_per_user=2, max_connections=3)
    api = Api(server.http)
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, ann.token), ws_connect(server, ann.token):
        with pytest.raises(trio_websocket.ConnectionRejected) as caught:
            async with ws_connect(server, ann.token):
                pass
        assert caught.value.status_code == 429
        async with ws_connect(server, bob.token) as b:
            await b.join()
            with pytest.raises(trio_websocket.ConnectionRejected) as caught:
                async with ws_connect(server, bob.token):
                    pass
            assert caught.value.status_code == 503
    # capacity comes back when sockets close
    async with ws_connect(server, ann.token) as a:
        await a.join()


async def test_limits_failed_logins_are_slowed(nursery: trio.Nursery, tmp_path: Path) -> None:
    server = await _server(nursery, tmp_path, login_failures=3, login_window_s=600.0)
    api = Api(server.http)
    await api.signup("ann", "the right one")
    for _ in range(3):
        with pytest.raises(HttpError) as caught:
            await api.post("/api/sessions", {"name": "ann", "password": "wrong guess"})
        assert caught.value.status == 401
    for password in ("wrong guess", "the right one"):
        with pytest.raises(HttpError) as caught:
            await api.post("/api/sessions", {"name": "ANN", "password": password})
        assert caught.value.status == 429
        assert caught.value.body["error"]["code"] == "rate_limited"
        assert int(caught.value.headers["Retry-After"]) > 500


async def test_limits_silent_handshake_is_closed(nursery: trio.Nursery, tmp_path: Path) -> None:
    server = await _server(nursery, tmp_path, first_frame_timeout_s=0.2)
    ann = await Api(server.http).signup("ann")
    async with ws_connect(server, ann.token) as a:
        assert await a.closed() == CloseCode.NO_PONG
    async with ws_connect(server, ann.token) as a:
        await a.join()  # a prompt first frame keeps the socket
        await a.say("still here")
        await a.expect("ack")


async def test_limits_rest_sends_share_one_bucket_per_user(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await _server(nursery, tmp_path, send_rate_per_s=0.1, send_burst=3)
    api = Api(server.http)
    ann, bob = await api.signup("ann"), await api.signup("bob")
    second = await api.post("/api/sessions", {"name": "ann", "password": "correct horse"})
    ann_too = Api(server.http, second["token"])  # another session of the same user
    for i, client in enumerate((ann, ann_too, ann)):
        await client.post("/api/rooms/general/messages", {"text": f"ok {i}", "client_id": f"k{i}"})
    for client in (ann, ann_too):
        with pytest.raises(HttpError) as caught:
            await client.post("/api/rooms/general/messages", {"text": "no", "client_id": "x"})
        assert caught.value.status == 429
        assert caught.value.body["error"]["code"] == "rate_limited"
        assert 1 <= int(caught.value.headers["Retry-After"]) <= 10
    await bob.post("/api/rooms/general/messages", {"text": "bob fine", "client_id": "b"})
    page = await bob.get("/api/rooms/general/messages")
    assert [m["text"] for m in page["messages"]] == ["ok 0", "ok 1", "ok 2", "bob fine"]


async def test_limits_rooms_owned_per_user(nursery: trio.Nursery, tmp_path: Path) -> None:
    server = await _server(nursery, tmp_path, max_rooms_per_user=2)
    api = Api(server.http)
    ann, bob = await api.signup("ann"), await api.signup("bob")
    await ann.post("/api/rooms", {"name": "one"})
    await ann.post("/api/rooms", {"name": "two", "private": True})
    with pytest.raises(HttpError) as caught:
        await ann.post("/api/rooms", {"name": "three"})
    assert caught.value.status == 403
    assert caught.value.body["error"]["code"] == "room_limit"
    await bob.post("/api/rooms", {"name": "three"})  # the cap is per user
    await ann.post("/api/dms", {"user": "bob"})  # DMs are not rooms one owns
    names = {r["name"] for r in (await ann.get("/api/rooms"))["rooms"]}
    assert {"one", "two", "three"} <= names


async def test_limits_room_creations_per_hour_count_taken_names_too(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await _server(nursery, tmp_path, room_creations_per_hour=3)
    ann = await Api(server.http).signup("ann")
    await ann.post("/api/rooms", {"name": "mine"})
    for taken in ("general", "mine"):  # probing names spends the budget as well
        with pytest.raises(HttpError) as caught:
            await ann.post("/api/rooms", {"name": taken})
        assert caught.value.status == 409
    with pytest.raises(HttpError) as caught:
        await ann.post("/api/rooms", {"name": "fresh"})
    assert caught.value.status == 429
    assert caught.value.body["error"]["code"] == "rate_limited"
    assert 3500 <= int(caught.value.headers["Retry-After"]) <= 3600
