"""History over REST: pages by seq, every message exactly once, oldest first."""

from __future__ import annotations

from ..support import Api, RunningServer, ws_connect


async def test_history_paging_backwards_returns_every_message_once_in_order(
    server: RunningServer, api: Api
) -> None:
    ann = await api.signup("ann")
    total = 237
    async with ws_connect(server, ann.token) as a:
        for i in range(total):
            await a.say(f"m{i}", client_id=f"c{i}")
        for _ in range(total):
            await a.expect("ack")
    seen: list[int] = []
    page = await ann.get("/api/rooms/general/messages?limit=50")
    assert page["head_seq"] == total and page["epoch"]
    while page["messages"]:
        seqs = [m["seq"] for m in page["messages"]]
        assert seqs == sorted(seqs)
        seen = seqs + seen
        page = await ann.get(f"/api/rooms/general/messages?limit=50&before={seqs[0]}")
    assert seen == list(range(1, total + 1))
    texts = (await ann.get("/api/rooms/general/messages?after=0&limit=3"))["messages"]
    assert [m["text"] for m in texts] == ["m0", "m1", "m2"]


async def test_history_paging_forwards_with_after(server: RunningServer, api: Api) -> None:
    ann = await api.signup("ann")
    for i in range(30):
        await ann.post("/api/rooms/general/messages", {"text": f"t{i}", "client_id": f"k{i}"})
    cursor, seen = 0, []
    while True:
        page = await ann.get(f"/api/rooms/general/messages?after={cursor}&limit=7")
        if not page["messages"]:
            break
        seen += [m["seq"] for m in page["messages"]]
        cursor = seen[-1]
    assert seen == list(range(1, 31))


async def test_history_messages_have_the_documented_fields(server: RunningServer, api: Api) -> None:
    ann = await api.signup("ann")
    ack = await ann.post("/api/rooms/general/messages", {"text": "<b>hi</b>", "client_id": "f"})
    (message,) = (await ann.get("/api/rooms/general/messages"))["messages"]
    assert message == {
        "room": "general",
        "id": ack["id"],
        "seq": 1,
        "user": "ann",
        "text": "<b>hi</b>",
        "ts": ack["ts"],
        "client_id": "f",
        "edited_ts": None,
        "deleted": False,
        "reactions": {},
        "reply_to": None,
        "mentions": [],
    }


async def test_history_room_list_counts_unread_after_read_marker(
    server: RunningServer, api: Api
) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        for i in range(4):
            await bob.post("/api/rooms/general/messages", {"text": f"{i}", "client_id": f"u{i}"})
        got = await a.messages(4)
        await a.send(type="read", room="general", seq=got[1]["seq"])
        await a.send(type="read", room="general", seq=1)  # markers never go backwards
        await a.join(since=4)  # frames are handled in order: the markers are stored now
    (general,) = (await ann.get("/api/rooms"))["rooms"]
    assert (general["name"], general["member"], general["head_seq"]) == ("general", True, 4)
    assert (general["last_read"], general["unread"]) == (2, 2)


async def test_history_own_messages_are_never_unread(server: RunningServer, api: Api) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, ann.token) as a:
        await a.join()
    await bob.post("/api/rooms/general/messages", {"text": "one", "client_id": "b1"})
    await ann.post("/api/rooms/general/messages", {"text": "mine", "client_id": "a1"})
    await bob.post("/api/rooms/general/messages", {"text": "two", "client_id": "b2"})
    (general,) = (await ann.get("/api/rooms"))["rooms"]
    assert (general["head_seq"], general["last_read"], general["unread"]) == (3, 2, 1)
