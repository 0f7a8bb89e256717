"""The chat model across two nodes (PostgreSQL + Redis): changes made on one node reach a
client of the other in seq order, a client resuming on the other node gets them from
the store, and a room made on one node is pushed to a user connected to the other."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from ..broker.test_contract import COREDIS_REFUSED_LEAK
from ..services_redis import running_redis
from ..support import Api, make_settings, start_server, ws_connect
from .test_chat_model import _change, _events, _fold, _rest_state, _room_events

pytestmark = pytest.mark.filterwarnings(COREDIS_REFUSED_LEAK)


async def test_chat_nodes_changes_and_rooms_cross_nodes(
    nursery: trio.Nursery, tmp_path: Path, pg_url: str
) -> None:
    async with running_redis(tmp_path / "redis") as redis:
        one, two = [
            await start_server(
                nursery,
                make_settings(tmp_path / name, database_url=pg_url, redis_url=redis.url, secret=""),
            )
            for name in ("one", "two")
        ]
        ann = await Api(one.http).signup("ann")
        bob = await Api(two.http).signup("bob")
        async with ws_connect(one, ann.token) as a, ws_connect(two, bob.token) as b:
            await a.join()
            await b.join()
            sent = await _change(a, 1, type="send", text="hello", client_id="m1")
            seen = await _events(b, 1)
            await b.send(type="leave", room="general")
            await b.expect("left")
            await _change(a, 2, type="edit", id=sent["id"], text="hello!", client_id="e1")
            await _change(a, 3, type="react", id=sent["id"], emoji="🎉", client_id="r1")
            second = await _change(a, 4, type="send", text="bye", client_id="m2")
            await _change(a, 5, type="delete", id=second["id"], client_id="d1")
            await b.send(type="join", room="general", since=seen[-1]["seq"])
            await b.expect("joined")
            resumed = await _events(b, 4)  # from the store, on the other node
            assert [e["seq"] for e in resumed] == [2, 3, 4, 5]
            await _change(a, 6, type="react", id=sent["id"], emoji="🎉", on=False, client_id="r2")
            [live] = await _events(b, 1)  # through Redis
            assert (live["type"], live["seq"], live["on"]) == ("reaction", 6, False)
            await Api(one.http, ann.token).post("/api/rooms", {"name": "across"})
            assert [r["name"] for r in await _room_events(b, 1)] == ["across"]
        page = await Api(two.http, bob.token).get("/api/rooms/general/messages")
        assert _fold(seen + resumed + [live]) == _rest_state(page)
        for server in (one, two):
            await server.stop()
