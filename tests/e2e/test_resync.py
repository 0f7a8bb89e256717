"""Signals missed while the node's Redis link was down: after it reconnects, the node
re-reads what they would have changed (resync.py).

What a lost signal leaves behind is made here exactly: the store says what another node
decided (a logout, a ban, a member removed, a mute) and this node never heard it. Then the
node's pub/sub connection is cut (CLIENT KILL on a real redis-server); it reconnects."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from nochat.store import now_ms

from ..broker.test_contract import COREDIS_REFUSED_LEAK
from ..services_redis import running_redis
from ..support import STEP_S, Api, HttpError, make_settings, start_server, ws_connect

pytestmark = pytest.mark.filterwarnings(COREDIS_REFUSED_LEAK)


async def test_resync_after_reconnect_applies_what_missed_signals_said(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    async with running_redis(tmp_path / "redis") as redis:
        server = await start_server(nursery, make_settings(tmp_path / "d", redis_url=redis.url))
        svc, api = server.services, Api(server.http)
        ann, bob, cat, dan = [await api.signup(n) for n in ("ann", "bob", "cat", "dan")]
        users = {n: await svc.store.user_by_name(n) for n in ("ann", "bob", "cat", "dan")}
        team = await svc.store.create_room("team", private=True, owner=users["cat"])
        async with (
            ws_connect(server, ann.token) as a,
            ws_connect(server, bob.token) as b,
            ws_connect(server, cat.token) as c,
            ws_connect(server, dan.token) as d,
        ):
            for client in (a, b, c, d):
                await client.join()
            await c.join("team")
            await d.say("cached: dan may write")
            await d.expect("ack")
            assert (await ann.get("/api/me"))["name"] == "ann"  # ann's session cached

            # What other nodes decided and signalled while this node could not hear:
            (ann_session,) = [
                sid
                for sid, conns in svc.connections.by_session.items()
                if any(conn.user.name == "ann" for conn in conns)
            ]
            await svc.store.revoke_session(ann_session)
            await svc.store.set_account_flag(users["bob"].id, "banned_ms", now_ms())
            await svc.store.remove_member(team.id, users["cat"].id)
            await svc.store.set_account_flag(users["dan"].id, "muted_until", now_ms() + 600_000)
            await svc.store.set_status(users["cat"], "busy", "in a meeting")

            assert await redis.kill_pubsub_clients() == 1
            assert await a.closed() == 4001
            assert await b.closed() == 4003
            with trio.fail_after(STEP_S):
                left = await c.expect("left", room="team")
            assert left["reason"] == "removed"
            with trio.fail_after(STEP_S):  # d shares general with cat: told the new status
                while (seen := await d.recv())["type"] != "presence" or seen["user"] != "cat":
                    pass
            assert (seen["state"], seen["text"]) == ("busy", "in a meeting")
            with pytest.raises(HttpError) as refused:
                await ann.get("/api/me")
            assert refused.value.status == 401
            await d.say("muted now")
            with trio.fail_after(STEP_S):
                assert (await d.expect("error"))["code"] == "muted"
            await c.say("cat is still in general")
            assert (await c.expect("ack"))["room"] == "general"
        await server.stop()
