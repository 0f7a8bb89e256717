"""A slow or silent client costs bounded memory, is closed, and slows no one else."""

from __future__ import annotations

import logging
import secrets
import socket
import struct
from pathlib import Path

import pytest
import trio

from nochat.errors import CloseCode

from ..support import STEP_S, Api, make_settings, stalled_client, start_server, ws_connect

OUTBOX = 64


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "write-pump-only"])
async def test_backpressure_stalled_reader_is_evicted_and_others_get_everything(
    nursery: trio.Nursery, tmp_path: Path, direct: bool
) -> None:
    # A generous TCP_USER_TIMEOUT: the kernel must not abort the stalled socket before the
    # test lets it read again, or it would see 1006 instead of the server's 4008.
    settings = make_settings(
        tmp_path / "d", outbox_size=OUTBOX, tcp_user_timeout_s=120, direct_send=direct
    )
    server = await start_server(nursery, settings)
    api = Api(server.http)
    ann, bob, cat = await api.signup("ann"), await api.signup("bob"), await api.signup("cat")
    hub = server.services.hub
    total = 1500
    async with trio.open_nursery() as client_nursery:
        slow, stream = await stalled_client(server, cat.token, client_nursery)
        await slow.join()
        async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b:
            await b.join()
            received: list[int] = []

            async def read_all() -> None:
                for m in await b.messages(total):
                    received.append(m["seq"])

            async with trio.open_nursery() as inner:
                inner.start_soon(read_all)
                for i in range(total):
                    # ~4 KB of incompressible text per message: megabytes in flight. One
                    # at a time, so each is its own commit and its own outbox item.
                    await a.say(f"{i} " + secrets.token_hex(1900))
                    await a.expect("ack")
                    assert hub.statistics().max_queued <= OUTBOX
            assert received == list(range(1, total + 1))
            stats = hub.statistics()
            assert stats.evictions == 1
            assert stats.total_queued == 0  # the evicted outbox was emptied at once
            assert hub.subscribers("general") == 1  # bob; the stalled one is gone
            assert stats.max_queued <= OUTBOX
        # Once it reads again, the evicted client learns why it was dropped.
        with trio.fail_after(STEP_S * 3):
            assert await slow.closed() == CloseCode.SLOW_CONSUMER
        await stream.aclose()
        client_nursery.cancel_scope.cancel()


async def test_backpressure_silent_client_is_closed_with_no_pong(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "d", ping_interval_s=0.05, pong_timeout_s=0.3)
    server = await start_server(nursery, settings)
    ann = await Api(server.http).signup("ann")
    async with ws_connect(server, ann.token) as a:
        assert (await a.recv())["type"] == "ping"
        assert await a.closed() == CloseCode.NO_PONG
    assert server.services.counters.closed_no_pong == 1


async def test_backpressure_client_answering_pings_stays_connected(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "d", ping_interval_s=0.05, pong_timeout_s=0.3)
    server = await start_server(nursery, settings)
    ann = await Api(server.http).signup("ann")
    async with ws_connect(server, ann.token) as a:
        for _ in range(15):  # 15 pings: well past pong_timeout
            assert (await a.recv())["type"] == "ping"
            await a.send(type="pong")
        await a.join()
    assert server.services.counters.closed_no_pong == 0


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "write-pump-only"])
async def test_backpressure_peer_reset_mid_write_is_a_disconnect_not_an_error(
    nursery: trio.Nursery, tmp_path: Path, direct: bool, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path / "d", tcp_user_timeout_s=120, direct_send=direct)
    server = await start_server(nursery, settings)
    api = Api(server.http)
    ann, cat = await api.signup("ann"), await api.signup("cat")
    counters = server.services.counters
    async with trio.open_nursery() as client_nursery:
        async with ws_connect(server, ann.token) as a:
            await a.join()
            _, stream = await stalled_client(
                server, cat.token, client_nursery, type="join", room="general"
            )
            await a.expect("presence", user="cat", state="online")
            slow = next(s for s in server.services.hub._all if s.user == "cat")
            for i in range(100):  # until cat's write pump waits on its full socket
                await a.say(f"{i} " + secrets.token_hex(1900))
                await a.expect("ack")
                if slow.queued_chars > 64 * 1024:
                    break
            assert slow.queued_chars > 64 * 1024 and slow.close_code is None
            caplog.clear()
            # Reset: SO_LINGER 0 makes close send RST, while the server is writing.
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            stream.socket.close()
            await a.expect("presence", user="cat", state="offline")  # its connection ended
            assert counters.closed_internal == 0
            assert counters.disconnects == 1  # cat's (ann is still here)
        client_nursery.cancel_scope.cancel()
    bad = [r for r in caplog.records if r.levelno > logging.INFO or r.exc_info]
    assert bad == []


async def test_backpressure_a_users_extra_replays_wait_for_a_slot(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path / "d", replays_per_user=1, outbox_stall_s=60, tcp_user_timeout_s=120
    )
    server = await start_server(nursery, settings)
    api = Api(server.http)
    ann, cat = await api.signup("ann"), await api.signup("cat")
    total = 200  # ~800 KB: more than a replay may queue, so a stalled one keeps its slot
    async with ws_connect(server, ann.token) as a, trio.open_nursery() as client_nursery:
        await a.join()
        for i in range(total):
            await a.say(f"{i} " + secrets.token_hex(1900))
            await a.expect("ack")
        _, stream = await stalled_client(
            server, cat.token, client_nursery, type="join", room="general", since=0
        )
        await a.expect("presence", user="cat", state="online")  # its replay has the slot
        async with ws_connect(server, cat.token) as c:
            await c.join(since=0)  # `joined` at once; its replay waits for cat's slot
            slots = server.services.throttles.replays
            assert slots.holders("cat") == 1
            assert slots._slots["cat"].statistics().tasks_waiting == 1
            await a.join(since=0)  # another user's replay is not held up
            assert [m["seq"] for m in await a.messages(total)] == list(range(1, total + 1))
            # The stalled socket goes (reset): its slot passes to the waiting join.
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            stream.socket.close()
            assert [m["seq"] for m in await c.messages(total)] == list(range(1, total + 1))
        client_nursery.cancel_scope.cancel()
