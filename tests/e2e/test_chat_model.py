"""Edits, deletes and reactions end to end on a real server: acks, fan-out in seq order,
the rules' error codes, REST twins with client_id dedup, and a client that was away
resuming with `since` to the same state as one that stayed and as REST history."""

from __future__ import annotations

import urllib.parse
from typing import Any

from ..support import Api, HttpError, RunningServer, WsClient, ws_connect


async def _events(ws: WsClient, n: int) -> list[dict[str, Any]]:
    """The next `n` room-log events (message, edit, delete, reaction), nothing else."""
    got: list[dict[str, Any]] = []
    while len(got) < n:
        event = await ws.recv()
        if event["type"] in ("message", "edit", "delete", "reaction"):
            got.append(event)
        elif event["type"] == "ping":
            await ws.send(type="pong")
    return got


def _fold(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a client makes of a room's events: each message's current state."""
    state: dict[str, dict[str, Any]] = {}
    for e in events:
        if e["type"] == "message":
            state[e["id"]] = {"text": e["text"], "deleted": False, "reactions": {}}
        elif e["type"] == "edit":
            state[e["id"]]["text"] = e["text"]
        elif e["type"] == "delete":
            state[e["id"]] = {"text": None, "deleted": True, "reactions": {}}
        else:
            users = state[e["id"]]["reactions"].setdefault(e["emoji"], [])
            if e["on"] and e["user"] not in users:
                users.append(e["user"])
            elif not e["on"] and e["user"] in users:
                users.remove(e["user"])
    for m in state.values():
        m["reactions"] = {k: v for k, v in m["reactions"].items() if v}
    return state


def _rest_state(page: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        m["id"]: {"text": m.get("text"), "deleted": m["deleted"], "reactions": m["reactions"]}
        for m in page["messages"]
    }


LOG_KINDS = ("message", "edit", "delete", "reaction")


async def _change(
    ws: WsClient, ref: int, log: list[dict[str, Any]] | None = None, **frame: Any
) -> dict[str, Any]:
    """Send a frame and return its ack or error; room-log events that come first are
    added to `log`."""
    await ws.send(ref=ref, room="general", **frame)
    while True:
        event = await ws.recv()
        if event.get("ref") == ref and event["type"] in ("ack", "error"):
            return event
        if event["type"] in LOG_KINDS and log is not None:
            log.append(event)
        if event["type"] == "ping":
            await ws.send(type="pong")


async def test_chat_model_changes_are_acked_fanned_out_and_replayed(
    server: RunningServer, api: Api
) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b:
        await a.join()
        await b.join()
        live: list[dict[str, Any]] = []  # what ann, who stays, is sent
        first = await _change(a, 1, live, type="send", text="first", client_id="m1")
        second = await _change(a, 2, live, type="send", text="second", client_id="m2")
        seen = await _events(b, 2)
        # bob leaves; what follows he must get on resume
        await b.send(type="leave", room="general")
        await b.expect("left")
        edit = await _change(a, 3, live, type="edit", id=first["id"], text="first!", client_id="e1")
        assert edit["type"] == "ack" and edit["seq"] == 3
        retry = await _change(
            a, 4, live, type="edit", id=first["id"], text="first!!", client_id="e1"
        )
        assert {k: retry[k] for k in ("id", "seq", "ts")} == {
            k: edit[k] for k in ("id", "seq", "ts")
        }
        assert (
            await _change(
                a, 5, live, type="react", id=first["id"], emoji="👍", on=True, client_id="r1"
            )
        )["seq"] == 4
        assert (await _change(a, 6, live, type="delete", id=second["id"], client_id="d1"))[
            "seq"
        ] == 5
        live += await _events(a, 5 - len(live))  # her own messages and changes, in seq order
        assert [e["seq"] for e in live] == [1, 2, 3, 4, 5]
        assert live[2] == {
            "type": "edit",
            "room": "general",
            "seq": 3,
            "id": first["id"],
            "user": "ann",
            "text": "first!",
            "ts": edit["ts"],
        }
        assert live[3]["emoji"] == "👍" and live[3]["on"] is True and live[3]["user"] == "ann"
        assert live[4] == {
            "type": "delete",
            "room": "general",
            "seq": 5,
            "id": second["id"],
            "user": "ann",
            "ts": live[4]["ts"],
        }
        await b.send(type="join", room="general", since=seen[-1]["seq"])
        await b.expect("joined")
        resumed = await _events(b, 3)
        assert [(e["type"], e["seq"]) for e in resumed] == [
            ("edit", 3),
            ("reaction", 4),
            ("delete", 5),
        ]
    page = await ann.get("/api/rooms/general/messages")
    assert _fold(seen + resumed) == _fold(live) == _rest_state(page)
    assert _rest_state(page)[second["id"]] == {"text": None, "deleted": True, "reactions": {}}
    assert page["messages"][0]["edited_ts"] == edit["ts"]


async def test_chat_model_rules_answer_with_their_codes(server: RunningServer, api: Api) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b:
        await a.join()
        await b.join()
        await a.send(type="send", room="general", text="mine", client_id="m1", ref=1)
        mine = await a.expect("ack", ref=1)
        cases = [
            (b, dict(type="edit", id=mine["id"], text="yours", client_id="x1"), "forbidden"),
            (b, dict(type="delete", id=mine["id"], client_id="x2"), "forbidden"),
            (a, dict(type="edit", id="00ff", text="?", client_id="x3"), "not_found"),
            (b, dict(type="react", id=mine["id"], emoji="nope", client_id="x4"), "invalid_emoji"),
            (b, dict(type="react", id=mine["id"], emoji="👍👍", client_id="x5"), "invalid_emoji"),
            (a, dict(type="edit", id=mine["id"], text=" ", client_id="x6"), "empty_text"),
        ]
        for ref, (ws, frame, code) in enumerate(cases, start=10):
            answer = await _change(ws, ref, **frame)
            assert (answer["type"], answer.get("code")) == ("error", code), frame
        await _change(a, 20, type="delete", id=mine["id"], client_id="d1")
        answer = await _change(a, 21, type="edit", id=mine["id"], text="back", client_id="e2")
        assert answer["code"] == "deleted"


async def test_chat_model_rest_twins_dedup_on_client_id(server: RunningServer, api: Api) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    sent = await ann.post("/api/rooms/general/messages", {"text": "bot says", "client_id": "m1"})
    path = f"/api/rooms/general/messages/{sent['id']}"
    body = {"text": "bot said", "client_id": "e1"}
    edit = await ann.call("PATCH", path, body)
    assert await ann.call("PATCH", path, {"text": "again", "client_id": "e1"}) == edit
    thumbs = urllib.parse.quote("👍")
    react = await bob.call("PUT", f"{path}/reactions/{thumbs}?client_id=r1")
    assert await bob.call("PUT", f"{path}/reactions/{thumbs}?client_id=r1") == react
    tada = await bob.call("PUT", f"{path}/reactions/:tada:?client_id=r2")
    await bob.call("DELETE", f"{path}/reactions/:tada:?client_id=r3")
    assert [edit["seq"], react["seq"], tada["seq"]] == [2, 3, 4]
    try:
        await bob.call("DELETE", f"{path}?client_id=d0")
        raise AssertionError("bob deleted ann's message")
    except HttpError as exc:
        assert (exc.status, exc.body["error"]["code"]) == (403, "forbidden")
    [m] = (await bob.get("/api/rooms/general/messages"))["messages"]
    assert (m["text"], m["reactions"], m["edited_ts"]) == ("bot said", {"👍": ["bob"]}, edit["ts"])
    gone = await ann.call("DELETE", f"{path}?client_id=d1")
    assert await ann.call("DELETE", f"{path}?client_id=d1") == gone
    try:
        await ann.call("PATCH", path, {"text": "x", "client_id": "e9"})
        raise AssertionError("edited a deleted message")
    except HttpError as exc:
        assert (exc.status, exc.body["error"]["code"]) == (409, "deleted")
    [m] = (await bob.get("/api/rooms/general/messages"))["messages"]
    assert m["deleted"] and "text" not in m


async def test_chat_model_search_over_rest(server: RunningServer, api: Api) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    await ann.post("/api/rooms", {"name": "hideout", "private": True})
    seen = await ann.post(
        "/api/rooms/general/messages", {"text": "otters hold hands", "client_id": "m1"}
    )
    await ann.post("/api/rooms/hideout/messages", {"text": "otters plotting", "client_id": "m2"})
    found = await bob.get("/api/search?q=otters")
    assert found == {
        "results": [
            {
                "room": "general",
                "seq": 1,
                "id": seen["id"],
                "user": "ann",
                "text": "otters hold hands",
                "snippet": "«otters» hold hands",
                "ts": seen["ts"],
            }
        ],
        "next": None,
    }
    assert [r["room"] for r in (await ann.get("/api/search?q=otters&limit=1"))["results"]] == [
        "hideout"
    ]
    await ann.call("DELETE", f"/api/rooms/general/messages/{seen['id']}?client_id=d1")
    assert (await bob.get("/api/search?q=otters"))["results"] == []
    for query, status in (
        ("q=", 400),
        ("q=" + "x" * 201, 400),
        ("q=a&limit=101", 400),
        ("q=a&room=hideout", 404),
        ("q=a&before=nope!", 400),
    ):
        try:
            await bob.get(f"/api/search?{query}")
            raise AssertionError(query)
        except HttpError as exc:
            assert exc.status == status, query


async def test_chat_model_replies_and_mentions_reach_clients_and_the_room_list(
    server: RunningServer, api: Api
) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    await bob.get("/api/rooms/general/messages")
    async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b:
        await a.join()
        await b.join()
        log: list[dict[str, Any]] = []
        first = await _change(a, 1, log, type="send", text="lunch?", client_id="m1")
        await _change(
            a, 2, log, type="send", text="@bob ping", client_id="m2", reply_to=first["id"]
        )
        bad = await _change(a, 3, log, type="send", text="x", client_id="m3", reply_to="00ff")
        assert bad["code"] == "not_found"
        got = await _events(b, 2)
        assert [(e["reply_to"], e["mentions"]) for e in got] == [(None, []), (first["id"], ["bob"])]
    rooms = (await bob.get("/api/rooms"))["rooms"]
    [general] = [r for r in rooms if r["name"] == "general"]
    assert (general["unread"], general["mentions"]) == (2, 1)
    rest = await bob.post(
        "/api/rooms/general/messages", {"text": "ok", "client_id": "b1", "reply_to": first["id"]}
    )
    page = (await bob.get(f"/api/rooms/general/messages?after={rest['seq'] - 1}"))["messages"]
    assert page[0]["reply_to"] == first["id"]


async def test_chat_model_status_is_shown_and_outlives_connections(
    server: RunningServer, api: Api
) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    assert (await bob.get("/api/users/ann"))["state"] == "offline"
    async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b:
        await a.join()
        await b.join()
        await a.expect("presence", user="bob", state="online")
        await b.send(type="status", state="busy", text="deep work")
        shown = await a.expect("presence", user="bob", state="busy")
        assert shown["text"] == "deep work" and shown["last_seen"] > 0
        await b.send(type="status", state="gone", ref=7)
        assert (await b.expect("error", ref=7))["code"] == "invalid_status"
        await b.send(type="status", state="away", text="x" * 101, ref=8)
        assert (await b.expect("error", ref=8))["code"] == "invalid_status"
        now = await ann.get("/api/users/bob")
        assert (now["name"], now["state"], now["text"]) == ("bob", "busy", "deep work")
    gone = await ann.get("/api/users/bob")
    assert (gone["state"], gone["text"]) == ("offline", "deep work")
    assert gone["last_seen"] >= now["last_seen"]
    async with ws_connect(server, bob.token) as b, ws_connect(server, ann.token) as a:
        await a.join()
        await b.join()  # back with the status he left with
        back = await a.expect("presence", user="bob")
        assert (back["state"], back["text"]) == ("busy", "deep work")
        put = await bob.call("PUT", "/api/me/status", {"state": "away", "text": "lunch"})
        assert (put["state"], put["text"]) == ("away", "lunch")
        assert (await a.expect("presence", user="bob", state="away"))["text"] == "lunch"
    try:
        await bob.call("PUT", "/api/me/status", {"state": "offline"})
        raise AssertionError("offline is the server's to say")
    except HttpError as exc:
        assert (exc.status, exc.body["error"]["code"]) == (400, "invalid_status")


async def _room_events(ws: WsClient, n: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < n:
        event = await ws.recv()
        if event["type"] == "room":
            got.append(event["room"])
        elif event["type"] == "ping":
            await ws.send(type="pong")
    return got


async def test_chat_model_rooms_are_pushed_to_who_can_see_them(
    server: RunningServer, api: Api
) -> None:
    ann, bob, cat = await api.signup("ann"), await api.signup("bob"), await api.signup("cat")
    async with ws_connect(server, bob.token) as b, ws_connect(server, cat.token) as c:
        await b.join()
        await c.join()
        await ann.post("/api/rooms", {"name": "plans", "private": True})  # ann's alone
        await ann.post("/api/rooms/plans/members", {"user": "bob"})
        await ann.post("/api/dms", {"user": "bob"})
        await ann.post("/api/rooms", {"name": "lobby"})
        pushed = await _room_events(b, 3)
        assert [(r["name"], r["private"], r["dm"], r["member"]) for r in pushed] == [
            ("plans", True, False, True),
            (pushed[1]["name"], True, True, True),
            ("lobby", False, False, False),
        ]
        listed = {r["name"] for r in (await bob.get("/api/rooms"))["rooms"]}
        assert {"plans", pushed[1]["name"], "lobby"} <= listed
        # cat sees only the public room: the private ones never reached her
        assert [r["name"] for r in await _room_events(c, 1)] == ["lobby"]


async def test_chat_model_room_pushed_on_being_added_shows_its_real_unread(
    server: RunningServer, api: Api
) -> None:
    """Added to a private room that already has messages: the pushed room object counts
    them, as GET /api/rooms does, not 0. (An @bob written before bob could see the room
    mentions nobody: mentions name users who can see the room when it is sent.)"""
    ann, bob = await api.signup("ann"), await api.signup("bob")
    await ann.post("/api/rooms", {"name": "plans", "private": True})
    await ann.post("/api/rooms/plans/messages", {"text": "agenda", "client_id": "p1"})
    await ann.post("/api/rooms/plans/messages", {"text": "@bob will join", "client_id": "p2"})
    async with ws_connect(server, bob.token) as b:
        await b.join()
        await ann.post("/api/rooms/plans/members", {"user": "bob"})
        (pushed,) = await _room_events(b, 1)
    [listed] = [r for r in (await bob.get("/api/rooms"))["rooms"] if r["name"] == "plans"]
    assert (pushed["head_seq"], pushed["unread"], pushed["mentions"]) == (2, 2, 0)
    assert pushed == listed
