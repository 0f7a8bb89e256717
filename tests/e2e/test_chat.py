"""End-to-end: two users chat in `general` over a real Hypercorn server."""

from __future__ import annotations

from pathlib import Path

import trio

from ..support import Api, RunningServer, make_settings, start_server, ws_connect


async def test_chat_two_users_see_same_order_and_sender_gets_ack(
    both_paths_server: RunningServer,
) -> None:
    server = both_paths_server
    api = Api(server.http)
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b:
        joined = await a.join()
        assert joined["epoch"] and joined["head_seq"] == 0 and "ann" in joined["online"]
        await b.join()
        sent: list[str] = []
        for i in range(5):
            sent.append(await a.say(f"ann {i}"))
            sent.append(await b.say(f"bob {i}"))
        seen_a = await a.messages(10)
        seen_b = await b.messages(10)
        assert [m["seq"] for m in seen_a] == list(range(1, 11))
        assert [(m["seq"], m["id"], m["text"]) for m in seen_a] == [
            (m["seq"], m["id"], m["text"]) for m in seen_b
        ]
        assert {m["client_id"] for m in seen_a} == set(sent)
    # The sender's acks carry the stored id and seq of its own messages.
    async with ws_connect(server, ann.token) as a:
        await a.join(since=10)
        client_id = await a.say("with ack", client_id="ack-check")
        ack = await a.expect("ack", client_id=client_id)
        history = await ann.get("/api/rooms/general/messages?after=10")
        (stored,) = history["messages"]
        assert (ack["id"], ack["seq"], ack["ts"]) == (stored["id"], 11, stored["ts"])
    # Live messages left through the direct path exactly when it was on.
    assert (server.services.hub.direct_writes > 0) is server.settings.direct_send


async def test_chat_presence_and_typing_reach_others(server: RunningServer, api: Api) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        async with ws_connect(server, bob.token) as b:
            joined = await b.join()
            assert joined["online"] == ["ann", "bob"]
            online = await a.recv()
            came = online.pop("last_seen")
            assert came > 0
            assert online == {
                "type": "presence",
                "room": "general",
                "user": "bob",
                "state": "online",
                "text": "",
            }
            await b.send(type="typing", room="general")
            assert await a.recv() == {"type": "typing", "room": "general", "user": "bob"}
            stats = await ann.get("/api/stats")
            assert stats == {"online_users": 2, "connections": 2, "rooms": 1}
        offline = await a.recv()
        assert offline.pop("last_seen") >= came
        assert offline == {
            "type": "presence",
            "room": "general",
            "user": "bob",
            "state": "offline",
            "text": "",
        }


async def test_chat_second_connection_of_a_user_does_not_repeat_presence(
    server: RunningServer, api: Api
) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b1:
        await a.join()
        await b1.join()
        assert (await a.recv())["state"] == "online"
        async with ws_connect(server, bob.token) as b2:
            await b2.join()
            await b2.say("from the second tab")
            # The next thing ann sees is the message, not a second "online".
            assert (await a.recv())["type"] == "message"
        await b1.say("still here")
        event = await a.recv()
        assert event["type"] == "message" and event["text"] == "still here"


async def test_chat_leave_stops_delivery(server: RunningServer, api: Api) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b:
        await a.join()
        await b.join()
        await b.send(type="leave", room="general", ref="bye")
        assert await b.expect("left") == {"type": "left", "room": "general", "ref": "bye"}
        await a.say("nobody hears")
        await a.expect("ack")
        await b.send(type="join", room="general", since=0, ref=7)
        joined = await b.expect("joined")
        assert joined["ref"] == 7
        (replayed,) = await b.messages(1)
        assert replayed["text"] == "nobody hears"


async def test_chat_messages_arrive_while_another_room_is_busy(
    server: RunningServer, api: Api
) -> None:
    ann = await api.signup("ann")
    await ann.post("/api/rooms", {"name": "side"})
    async with ws_connect(server, ann.token) as a:
        await a.join("general")
        await a.join("side")
        await a.say("g", room="general")
        await a.say("s", room="side")
        with trio.fail_after(5):
            got_general = await a.messages(1, room="general")
        assert got_general[0]["text"] == "g"


async def test_chat_presence_in_a_big_room_comes_in_batches(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await start_server(nursery, make_settings(tmp_path / "d", presence_batch_above=1))
    api = Api(server.http)
    ann, bob, cat, dan = [await api.signup(n) for n in ("ann", "bob", "cat", "dan")]
    async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b:
        await a.join()
        await b.join()  # a room of one subscriber: bob's arrival is announced at once
        online = await a.recv()
        assert (online["type"], online["user"], online["state"]) == ("presence", "bob", "online")
        async with ws_connect(server, cat.token) as c, ws_connect(server, dan.token) as d:
            await c.join()
            await d.join()
            first = await a.recv()
            assert (first["user"], first["state"]) == ("cat", "online")
            # dan's arrival came in the same frame as cat's: one delivery for the batch
            assert [(e["type"], e["user"], e["state"]) for e in a.pending] == [
                ("presence", "dan", "online")
            ]
            a.pending.clear()
        gone = [await a.recv(), await a.recv()]
        assert sorted((e["user"], e["state"]) for e in gone) == [
            ("cat", "offline"),
            ("dan", "offline"),
        ]
