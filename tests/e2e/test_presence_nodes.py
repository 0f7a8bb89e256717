"""Presence across nodes (issue 10, scenario 3): two real NoChat processes sharing one
real Redis and one PostgreSQL (test_scaleout's `two_nodes`), real WebSocket clients.

Showing that something was *not* announced across processes: a node's events reach
another node in the order it published them, so a later event of the same node (a
marker message) arrives after anything it announced before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from ..support import STEP_S, Api, ServerProcess, WsClient, ws_connect
from .test_scaleout import two_nodes

pytest.importorskip("coredis")

Event = dict[str, Any]
#: A dead node's users are offline on every other node within this (docs/DEPLOY.md:
#: presence_lease_s + presence_refresh_s = 12 s by default, plus delivery).
PRESENCE_BOUND_S = 15.0


async def _until(client: WsClient, done: Callable[[Event], bool], within: float) -> list[Event]:
    """Every event up to and including the first that is `done` (pings answered)."""
    seen: list[Event] = []
    with trio.fail_after(within):
        while True:
            while not client.pending:
                data = json.loads(await client.conn.get_message())
                client.pending.extend(data if isinstance(data, list) else [data])
            event = client.pending.popleft()
            if event["type"] == "ping":
                await client.send(type="pong")
            seen.append(event)
            if done(event):
                return seen


def _presence(user: str, state: str | None = None) -> Callable[[Event], bool]:
    return lambda e: e["type"] == "presence" and e["user"] == user and state in (None, e["state"])


def _message(text: str) -> Callable[[Event], bool]:
    return lambda e: e["type"] == "message" and e["text"] == text


def _about(events: list[Event], user: str) -> list[str]:
    return [e["state"] for e in events if e["type"] == "presence" and e["user"] == user]


async def _stats(node: ServerProcess, api: Api) -> dict[str, Any]:
    return dict(await Api(node.http, api.token).get("/api/stats"))


async def test_presence_nodes_joined_and_status_on_b_show_a_user_connected_only_to_a(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_nodes(tmp_path, pg_url) as cluster:
        api = Api(cluster.a.http)
        ann, bob, cat = [await api.signup(name) for name in ("ann", "bob", "cat")]
        async with ws_connect(cluster.b, bob.token) as bob_b:
            await bob_b.join()
            async with ws_connect(cluster.a, ann.token) as ann_a:
                await ann_a.join()
                await _until(bob_b, _presence("ann", "online"), STEP_S)  # A told B
                await ann_a.send(type="status", state="busy", text="deep work")
                busy = (await _until(bob_b, _presence("ann", "busy"), STEP_S))[-1]
                assert busy["text"] == "deep work"  # a status set on A reaches B's sockets
                async with ws_connect(cluster.b, cat.token) as cat_b:
                    joined = await cat_b.join()
                assert (joined["online"], joined["online_count"]) == (["ann", "bob", "cat"], 3)
                shown = await Api(cluster.b.http, bob.token).get("/api/users/ann")
                assert (shown["state"], shown["text"]) == ("busy", "deep work")
            await _until(bob_b, _presence("ann", "offline"), STEP_S)
        gone = await Api(cluster.b.http, bob.token).get("/api/users/ann")
        assert (gone["state"], gone["text"]) == ("offline", "deep work")


async def test_presence_nodes_a_user_on_both_nodes_is_online_once(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_nodes(tmp_path, pg_url) as cluster:
        api = Api(cluster.a.http)
        ann, bob, cat = [await api.signup(name) for name in ("ann", "bob", "cat")]
        async with (
            ws_connect(cluster.b, bob.token) as bob_b,
            ws_connect(cluster.a, cat.token) as cat_a,
        ):
            await bob_b.join()
            await cat_a.join()
            await _until(bob_b, _presence("cat", "online"), STEP_S)
            async with ws_connect(cluster.b, ann.token) as ann_b:
                async with ws_connect(cluster.a, ann.token) as ann_a:
                    await ann_a.join()
                    await _until(bob_b, _presence("ann", "online"), STEP_S)
                    await ann_b.join()  # online via A already: B announces nothing
                    await ann_b.say("m1")
                    assert _about(await _until(bob_b, _message("m1"), STEP_S), "ann") == []
                with trio.fail_after(STEP_S):  # A has let go of ann's socket (another process)
                    while (await _stats(cluster.a, cat))["connections"] > 1:  # noqa: ASYNC110
                        await trio.sleep(0.05)
                on_a = Api(cluster.a.http, cat.token)
                assert (await on_a.get("/api/users/ann"))["state"] == "online"  # via B
                await cat_a.say("m2")  # A's marker: after anything A announced about ann
                assert _about(await _until(bob_b, _message("m2"), STEP_S), "ann") == []
            seen = await _until(bob_b, _presence("ann", "offline"), STEP_S)  # both gone now
            await bob_b.say("m3")
            seen += await _until(bob_b, _message("m3"), STEP_S)
            assert _about(seen, "ann") == ["offline"]


async def test_presence_nodes_kill_9_shows_the_dead_nodes_users_offline_within_the_bound(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_nodes(tmp_path, pg_url) as cluster:
        api = Api(cluster.a.http)
        ann, bob, dan = [await api.signup(name) for name in ("ann", "bob", "dan")]
        async with (
            ws_connect(cluster.b, bob.token) as bob_b,
            ws_connect(cluster.a, ann.token) as ann_a,
            ws_connect(cluster.a, dan.token) as dan_a,
            ws_connect(cluster.b, dan.token) as dan_b,
        ):
            await bob_b.join()
            await ann_a.join()
            await dan_a.join()
            await dan_b.join()
            await _until(bob_b, _presence("ann", "online"), STEP_S)
            dan_count = ("HINCRBY", "nochat:presence:room:general", "dan", "0")
            with trio.fail_after(STEP_S):  # both nodes hold dan in Redis (another process)
                while await cluster.redis.command(*dan_count) != ":2":  # noqa: ASYNC110
                    await trio.sleep(0.05)
            cluster.a.process.kill()  # kill -9: A cleans nothing up
            killed = trio.current_time()
            with trio.fail_after(STEP_S):
                await cluster.a.process.wait()
            seen = await _until(bob_b, _presence("ann", "offline"), PRESENCE_BOUND_S + 5)
            took = trio.current_time() - killed
            await bob_b.say("marker")  # B reaped A: its marker follows all it announced
            seen += await _until(bob_b, _message("marker"), STEP_S)
            assert took <= PRESENCE_BOUND_S, f"offline after {took:.1f} s"
            assert "offline" not in _about(seen, "dan")  # still on B: never offline
            joined = await bob_b.join()
            assert (joined["online"], joined["online_count"]) == (["bob", "dan"], 2)
            on_b = Api(cluster.b.http, bob.token)
            assert (await on_b.get("/api/users/ann"))["state"] == "offline"
            assert (await on_b.get("/api/users/dan"))["state"] == "online"


async def test_presence_nodes_a_status_set_through_b_reaches_the_rooms_and_cache_of_a(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_nodes(tmp_path, pg_url) as cluster:
        api = Api(cluster.a.http)
        ann, bob = [await api.signup(name) for name in ("ann", "bob")]
        await ann.post("/api/rooms", {"name": "later"})
        async with (
            ws_connect(cluster.b, bob.token) as bob_b,
            ws_connect(cluster.a, ann.token) as ann_a,
        ):
            await bob_b.join()
            await bob_b.join("later")
            await ann_a.join()
            await _until(bob_b, _presence("ann", "online"), STEP_S)
            on_b = Api(cluster.b.http, ann.token)  # B holds none of ann's sockets
            await on_b.call("PUT", "/api/me/status", {"state": "away", "text": "lunch"})
            away = (await _until(bob_b, _presence("ann", "away"), STEP_S))[-1]
            assert (away["room"], away["text"]) == ("general", "lunch")
            await ann_a.join("later")  # A shows her new status, not the one it had cached
            came = (await _until(bob_b, lambda e: e.get("room") == "later", STEP_S))[-1]
            assert (came["type"], came["user"], came["state"]) == ("presence", "ann", "away")
