"""A private room's owner as clients see it (docs/PROTOCOL.md): the member routes name the
owner, and a removal or a hand-over reaches the room's other connected members at once
(`member_removed`, `owner_changed`), so their People lists need no reload."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from ..support import STEP_S, Api, RunningServer, ws_connect


async def _club(api: Api) -> tuple[Api, Api, Api]:
    """ann owns the private room `club`; bob and cat are its members."""
    ann, bob, cat = await api.signup("ann"), await api.signup("bob"), await api.signup("cat")
    await ann.post("/api/rooms", {"name": "club", "private": True})
    for name in ("bob", "cat"):
        await ann.post("/api/rooms/club/members", {"user": name})
    return ann, bob, cat


async def test_owners_member_routes_name_the_owner(api: Api) -> None:
    ann, bob, _ = await _club(api)
    added = await ann.post("/api/rooms/club/members", {"user": "cat"})  # already: no change
    assert added == {"members": ["ann", "bob", "cat"], "owner": "ann"}
    assert await bob.get("/api/rooms/club/members") == {
        "members": ["ann", "bob", "cat"],
        "owner": "ann",
    }
    removed = await ann.call("DELETE", "/api/rooms/club/members/bob")
    assert removed == {"members": ["ann", "cat"], "owner": "ann"}
    handed = await ann.post("/api/rooms/club/owner", {"name": "cat"})
    assert (handed["name"], handed["owner"]) == ("club", "cat")
    assert (await ann.get("/api/rooms/club/members"))["owner"] == "cat"
    # Nobody manages the members of a public room or a DM.
    assert (await ann.get("/api/rooms/general/members"))["owner"] is None
    await ann.post("/api/dms", {"user": "bob"})
    dm = next(r for r in (await ann.get("/api/rooms"))["rooms"] if r["dm"])
    assert (await bob.get(f"/api/rooms/{dm['name']}/members"))["owner"] is None


async def test_owners_removal_and_hand_over_reach_the_rooms_other_sockets(
    server: RunningServer, api: Api
) -> None:
    ann, bob, cat = await _club(api)
    async with (
        ws_connect(server, bob.token) as bob_ws,
        ws_connect(server, cat.token) as cat_ws,
    ):
        await bob_ws.join("club")
        await cat_ws.join("club")
        with trio.fail_after(STEP_S):
            await ann.call("DELETE", "/api/rooms/club/members/bob")
            assert await cat_ws.expect("member_removed") == {
                "type": "member_removed",
                "room": "club",
                "user": "bob",
            }
            # bob himself gets `left`, not his own removal.
            assert (await bob_ws.expect("left", room="club"))["reason"] == "removed"
            await ann.post("/api/rooms/club/owner", {"name": "cat"})
            assert await cat_ws.expect("owner_changed") == {
                "type": "owner_changed",
                "room": "club",
                "owner": "cat",
            }


async def test_owners_removal_and_hand_over_reach_members_on_another_node(
    tmp_path: Path, pg_url: str
) -> None:
    pytest.importorskip("coredis")
    from .test_scaleout import two_nodes

    async with two_nodes(tmp_path, pg_url) as cluster:
        ann, bob, cat = await _club(Api(cluster.a.http))
        async with (
            ws_connect(cluster.b, bob.token) as bob_ws,
            ws_connect(cluster.b, cat.token) as cat_ws,
        ):
            await bob_ws.join("club")
            await cat_ws.join("club")
            with trio.fail_after(STEP_S):
                await ann.call("DELETE", "/api/rooms/club/members/bob")  # through node A
                assert (await cat_ws.expect("member_removed"))["user"] == "bob"
                assert (await bob_ws.expect("left", room="club"))["reason"] == "removed"
                await ann.post("/api/rooms/club/owner", {"name": "cat"})
                assert (await cat_ws.expect("owner_changed"))["owner"] == "cat"
