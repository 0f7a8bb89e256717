"""The Redis broker in a real NoChat server, and coredis itself on Trio."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import coredis
import pytest
import trio

from nochat.broker import BrokerStatus, SignalKind, SignalPayload
from nochat.broker.redis import RedisBroker
from nochat.hub import Hub

from ..services_redis import RedisServer, free_port, running_redis
from ..support import STEP_S, Api, make_settings, require_program, start_server, ws_connect
from .test_contract import COREDIS_REFUSED_LEAK, SharedLog

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


def _redis_broker(url: str, *, buffer: int = 1000) -> RedisBroker:
    log = SharedLog()
    return RedisBroker(
        url,
        Hub(),
        fetch_range=log.fetch_range,
        fetch_head=log.fetch_head,
        hold_s=1.0,
        buffer=buffer,
    )


def _resyncs(broker: RedisBroker) -> trio.MemoryReceiveChannel[SignalPayload]:
    """Every `resync` the broker dispatches on its node, as they come."""
    send, receive = trio.open_memory_channel[SignalPayload](100)
    broker.on_signal(SignalKind.RESYNC, send.send_nowait)
    return receive


async def test_redis_broker_resyncs_its_node_after_every_connect(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """Pub/sub keeps nothing for a subscriber that is away: after each (re)connect the
    node is told to re-read what signals it may have missed would have changed."""
    async with running_redis(tmp_path / "redis") as redis:
        broker = _redis_broker(redis.url)
        resyncs = _resyncs(broker)
        await nursery.start(broker.run)
        with trio.fail_after(STEP_S):
            assert (await resyncs.receive())["why"] == "connected to Redis"
            await broker.wait_status(BrokerStatus.HEALTHY)
            assert await redis.kill_pubsub_clients() == 1
            assert (await resyncs.receive())["why"] == "connected to Redis"
        assert broker.connects == 2


async def test_redis_broker_that_lost_a_signal_has_every_node_resync(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """A signal that never reached Redis (here: the send buffer was full while the node
    had no Redis yet) is lost for every other node: once connected, the node that lost
    it tells every node to resync."""
    async with running_redis(tmp_path / "redis") as redis:
        other = _redis_broker(redis.url)
        heard = _resyncs(other)
        await nursery.start(other.run)
        with trio.fail_after(STEP_S):
            await heard.receive()  # its own, on connecting
            await other.wait_synced()
        lossy = _redis_broker(redis.url, buffer=1)
        for user in ("1", "2"):  # the second does not fit the buffer: lost
            lossy.signal(SignalKind.ACCOUNT_CHANGED, {"user": user, "close": ""})
        assert lossy.dropped == 1
        await nursery.start(lossy.run)
        with trio.fail_after(STEP_S):
            assert (await heard.receive())["why"] == "a node lost a signal"
        with pytest.raises(trio.WouldBlock):  # once, not at every connect
            heard.receive_nowait()
