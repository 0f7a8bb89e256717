"""Private rooms and DMs: nobody reads, writes or observes a room they do not belong to."""

from __future__ import annotations

import pytest

from ..support import Api, HttpError, RunningServer, ws_connect


async def _not_found(call: object) -> None:
    with pytest.raises(HttpError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.status == 404
    assert caught.value.body["error"]["code"] == "not_found"


async def test_access_private_room_is_invisible_to_non_members(
    server: RunningServer, api: Api
) -> None:
    ann, eve = await api.signup("ann"), await api.signup("eve")
    created = await ann.post("/api/rooms", {"name": "secret", "private": True})
    assert created["private"] and created["member"]
    await ann.post("/api/rooms/secret/messages", {"text": "for members", "client_id": "s1"})
    # listing
    assert [r["name"] for r in (await eve.get("/api/rooms"))["rooms"]] == ["general"]
    assert "secret" in [r["name"] for r in (await ann.get("/api/rooms"))["rooms"]]
    # REST: read, send, members — the same answer as a room that does not exist
    for path in ("/api/rooms/secret/messages", "/api/rooms/secret/members"):
        await _not_found(eve.get(path))
        await _not_found(eve.get(path.replace("secret", "no-such-room")))
    await _not_found(eve.post("/api/rooms/secret/messages", {"text": "x", "client_id": "e1"}))
    await _not_found(eve.post("/api/rooms/secret/members", {"user": "eve"}))
    # WebSocket: join, resume, send, typing, read
    async with ws_connect(server, eve.token) as e:
        for frame in (
            {"type": "join", "room": "secret"},
            {"type": "join", "room": "secret", "since": 0},
            {"type": "send", "room": "secret", "text": "x", "client_id": "e2"},
        ):
            await e.send(**frame, ref="probe")
            error = await e.expect("error", ref="probe")
            assert error["code"] == "not_found"
        await e.send(type="typing", room="secret", ref="t")
        assert (await e.expect("error", ref="t"))["code"] == "not_joined"
    page = await ann.get("/api/rooms/secret/messages")
    assert [m["text"] for m in page["messages"]] == ["for members"]


async def test_access_presence_and_typing_of_private_room_stay_inside(
    server: RunningServer, api: Api
) -> None:
    ann, bob, eve = await api.signup("ann"), await api.signup("bob"), await api.signup("eve")
    await ann.post("/api/rooms", {"name": "inner", "private": True})
    await ann.post("/api/rooms/inner/members", {"user": "bob"})
    async with (
        ws_connect(server, ann.token) as a,
        ws_connect(server, bob.token) as b,
        ws_connect(server, eve.token) as e,
    ):
        await e.join("general")
        await a.join("inner")
        joined = await b.join("inner")
        assert joined["members"] == ["ann", "bob"] and joined["online"] == ["ann", "bob"]
        assert (await a.recv())["type"] == "presence"
        await b.send(type="typing", room="inner")
        await b.say("inside", room="inner")
        assert (await a.recv())["type"] == "typing"
        assert (await a.messages(1, room="inner"))[0]["text"] == "inside"
        # eve, in general only, saw none of it: her next event is this marker.
        await a.say("marker", room="general")
        event = await e.recv()
        assert (event["type"], event["text"]) == ("message", "marker")


async def test_access_only_the_owner_adds_members(server: RunningServer, api: Api) -> None:
    ann, bob, cat = await api.signup("ann"), await api.signup("bob"), await api.signup("cat")
    await ann.post("/api/rooms", {"name": "club", "private": True})
    await ann.post("/api/rooms/club/members", {"user": "bob"})
    with pytest.raises(HttpError) as caught:
        await bob.post("/api/rooms/club/members", {"user": "cat"})
    assert caught.value.status == 403
    assert (await bob.get("/api/rooms/club/members"))["members"] == ["ann", "bob"]
    await _not_found(cat.get("/api/rooms/club/messages"))
    await _not_found(ann.post("/api/rooms/club/members", {"user": "nobody"}))


async def test_access_dm_is_shared_by_two_and_found_again(server: RunningServer, api: Api) -> None:
    ann, bob, eve = await api.signup("ann"), await api.signup("bob"), await api.signup("eve")
    dm = await ann.post("/api/dms", {"user": "bob"})
    assert dm["dm"] and dm["private"]
    assert await bob.post("/api/dms", {"user": "ann"}) == dm
    assert await ann.post("/api/dms", {"user": "bob"}) == dm
    for who in (ann, bob):
        assert dm["name"] in [r["name"] for r in (await who.get("/api/rooms"))["rooms"]]
    assert dm["name"] not in [r["name"] for r in (await eve.get("/api/rooms"))["rooms"]]
    await bob.post(f"/api/rooms/{dm['name']}/messages", {"text": "psst", "client_id": "d1"})
    assert (await ann.get(f"/api/rooms/{dm['name']}/messages"))["messages"][0]["text"] == "psst"
    await _not_found(eve.get(f"/api/rooms/{dm['name']}/messages"))
    await _not_found(eve.post(f"/api/rooms/{dm['name']}/messages", {"text": "x", "client_id": "x"}))
    with pytest.raises(HttpError) as caught:
        await ann.post(f"/api/rooms/{dm['name']}/members", {"user": "eve"})
    assert caught.value.status == 403  # a DM has no owner: it stays two people
    async with ws_connect(server, eve.token) as e:
        await e.send(type="join", room=dm["name"], ref=1)
        assert (await e.expect("error", ref=1))["code"] == "not_found"
    with pytest.raises(HttpError) as caught:
        await ann.post("/api/dms", {"user": "ann"})
    assert caught.value.status == 400


async def test_access_public_rooms_take_no_members(server: RunningServer, api: Api) -> None:
    ann = await api.signup("ann")
    await api.signup("bob")
    await ann.post("/api/rooms", {"name": "open"})
    with pytest.raises(HttpError) as caught:
        await ann.post("/api/rooms/open/members", {"user": "bob"})
    assert (caught.value.status, caught.value.body["error"]["code"]) == (400, "not_private")


async def test_access_taken_room_name_answers_the_same_public_or_private(
    server: RunningServer, api: Api
) -> None:
    """A taken name is a 409 whoever's room it is: the answer never says the room is private,
    and probing names spends the hourly creation budget (test_limits.py)."""
    ann, eve = await api.signup("ann"), await api.signup("eve")
    await ann.post("/api/rooms", {"name": "hidden", "private": True})
    await ann.post("/api/rooms", {"name": "shown"})
    answers = []
    for name in ("hidden", "shown", "general"):
        with pytest.raises(HttpError) as caught:
            await eve.post("/api/rooms", {"name": name})
        answers.append((caught.value.status, caught.value.body))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 409 and answers[0][1]["error"]["code"] == "room_exists"
    await _not_found(eve.get("/api/rooms/hidden/messages"))


async def test_access_room_list_pages_public_rooms_and_always_holds_your_own(api: Api) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    for i in range(1, 8):
        await ann.post("/api/rooms", {"name": f"p{i}"})
    await ann.post("/api/rooms", {"name": "ann-secret", "private": True})
    await bob.post("/api/rooms", {"name": "zz-bob"})
    await bob.post("/api/rooms", {"name": "bob-secret", "private": True})

    first = await bob.get("/api/rooms?limit=2")
    names = [r["name"] for r in first["rooms"]]
    # Both of bob's rooms although the limit is 2, then the first two public ones.
    assert names == ["bob-secret", "zz-bob", "general", "p1"]
    assert [r["member"] for r in first["rooms"]] == [True, True, False, False]
    assert first["next"] == "p1"
    seen, cursor = names[2:], first["next"]
    while cursor is not None:
        page = await bob.get(f"/api/rooms?limit=2&after={cursor}")
        assert all(not r["member"] for r in page["rooms"])
        seen += [r["name"] for r in page["rooms"]]
        cursor = page["next"]
    assert seen == ["general"] + [f"p{i}" for i in range(1, 8)]  # each once, none private
    everything = await bob.get("/api/rooms")
    assert everything["next"] is None and len(everything["rooms"]) == 10
    for bad in ("limit=501", "limit=0", "after=Not%20A%20Room"):
        with pytest.raises(HttpError) as caught:
            await bob.get(f"/api/rooms?{bad}")
        assert caught.value.status == 400
