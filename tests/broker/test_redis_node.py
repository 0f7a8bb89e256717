"""The Redis broker in a real NoChat server, and coredis itself on Trio."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import coredis
import pytest
import trio

from nochat.broker import BrokerStatus
from nochat.broker.redis import RedisBroker

from ..services_redis import RedisServer, free_port, running_redis
from ..support import STEP_S, Api, make_settings, require_program, start_server, ws_connect
from .test_contract import COREDIS_REFUSED_LEAK

pytestmark = pytest.mark.filterwarnings(COREDIS_REFUSED_LEAK)

METRICS_TOKEN = "redis-node-metrics"


async def test_coredis_pubsub_runs_natively_on_trio(tmp_path: Path) -> None:
    async with running_redis(tmp_path / "redis") as redis:
        client = coredis.Redis.from_url(redis.url, decode_responses=True)
        with trio.fail_after(STEP_S):
            async with client, client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe("c")
                assert await client.publish("c", "hello") == 1
                message = await anext(aiter(pubsub))  # subscribe confirmations skipped
    assert message["channel"] == "c" and message["data"] == "hello"


async def test_redis_node_serves_chat_and_logout(nursery: trio.Nursery, tmp_path: Path) -> None:
    async with running_redis(tmp_path / "redis") as redis:
        server = await start_server(
            nursery, make_settings(tmp_path / "d", redis_url=redis.url, metrics_token=METRICS_TOKEN)
        )
        broker = server.services.broker
        assert isinstance(broker, RedisBroker)
        api = Api(server.http)
        ann, bob = await api.signup("ann"), await api.signup("bob")
        async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b:
            await a.join()
            await b.join()
            for i in range(3):
                await a.say(f"ann {i}")
            assert [m["seq"] for m in await b.messages(3)] == [1, 2, 3]
            await bob.call("DELETE", "/api/sessions")  # logout: a node-wide signal
            assert await b.closed() == 4001
        assert broker.sent > 0
        await server.stop()


async def test_redis_down_node_serves_and_readyz_says_degraded(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    redis = RedisServer(require_program("redis-server"), tmp_path / "redis", free_port())
    server = await start_server(
        nursery, make_settings(tmp_path / "d", redis_url=redis.url, metrics_token=METRICS_TOKEN)
    )
    api = Api(server.http)
    assert await api.get("/readyz") == {
        "status": "degraded",
        "store": "ok",
        "broker": "down",
    }  # 200
    assert "nochat_broker_up 0.0" in await _metrics(server.http)
    ann = await api.signup("ann")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        client_id = await a.say("while Redis is down")
        assert (await a.expect("ack", client_id=client_id))["seq"] == 1  # committed, acked
        assert [m["seq"] for m in await a.messages(1)] == [1]  # delivered locally
        await redis.start()
        try:
            with trio.fail_after(STEP_S):
                await server.services.broker.wait_status(BrokerStatus.HEALTHY)  # type: ignore[attr-defined]
                # Presence re-registers too, and tells the room (other nodes) ann is
                # online: the broker's queue empties once Redis has taken that as well.
                await server.services.presence.wait_synced()  # type: ignore[attr-defined]
                while server.services.broker.statistics().queued:  # noqa: ASYNC110 (Redis)
                    await trio.sleep(0.01)
            assert await api.get("/readyz") == {"status": "ready", "store": "ok"}
            text = await _metrics(server.http)
            assert "nochat_broker_up 1.0" in text and "nochat_broker_connects_total 1.0" in text
            assert "nochat_broker_queued 0.0" in text  # nothing waiting to be published
            await a.say("after")
            assert [m["seq"] for m in await a.messages(1)] == [2]
        finally:
            await server.stop()
            await redis.stop()


async def _metrics(base: str) -> str:
    def fetch() -> str:
        request = urllib.request.Request(
            base + "/metrics", headers={"Authorization": "Bearer " + METRICS_TOKEN}
        )
        with urllib.request.urlopen(request, timeout=STEP_S) as resp:
            return str(resp.read().decode())

    return await trio.to_thread.run_sync(fetch)
