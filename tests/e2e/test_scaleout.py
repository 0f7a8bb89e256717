"""Scale-out end to end: real NoChat processes sharing one real Redis and one PostgreSQL.

Two nodes are two `nochat serve` processes on two ports; `--workers 2` is one process
group on one port. Every client is a real WebSocket; nothing is mocked.
"""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from ..services_pg import PgServer
from ..services_redis import RedisServer, running_redis
from ..support import (
    STEP_S,
    Api,
    HttpError,
    ServerProcess,
    WsClient,
    cli_env,
    cli_server,
    run_cli,
    server_process,
    ws_connect,
)

pytest.importorskip("coredis")

#: PostgreSQL restarts and a node's pool reconnects within this bound.
RECOVERY_S = 30.0
#: These tests send bursts on purpose: they are not about rate limits (test_limits.py is).
FAST = {"send_rate_per_s": "10000", "send_burst": "10000", "frame_burst": "10000"}


@dataclass
class Cluster:
    redis: RedisServer
    database_url: str
    a: ServerProcess
    b: ServerProcess


@asynccontextmanager
async def two_nodes(tmp_path: Path, pg_url: str) -> AsyncIterator[Cluster]:
    """Nodes A and B: two processes, two ports, one Redis, one PostgreSQL database.
    Both start at once (start-up is most of these tests' time)."""
    async with running_redis(tmp_path / "redis") as redis:
        nodes: dict[str, ServerProcess] = {}
        started = {name: trio.Event() for name in ("a", "b")}
        done = trio.Event()

        async def hold(name: str) -> None:
            env = {"redis_url": redis.url, "database_url": pg_url, **FAST}
            async with server_process(tmp_path / name, **env) as node:
                nodes[name] = node
                started[name].set()
                await done.wait()

        async with trio.open_nursery() as nursery:
            for name in started:
                nursery.start_soon(hold, name)
            for event in started.values():
                await event.wait()
            try:
                yield Cluster(redis, pg_url, nodes["a"], nodes["b"])
            finally:
                done.set()


async def _sessions(node: ServerProcess, *names: str) -> list[Api]:
    return [await Api(node.http).signup(name) for name in names]


async def _collect(client: WsClient, n: int, room: str = "general") -> list[dict[str, Any]]:
    with trio.fail_after(STEP_S * 2):
        return await client.messages(n, room)


async def test_scaleout_every_client_gets_every_message_once_in_one_order(
    tmp_path: Path, pg_url: str
) -> None:
    per_sender = 25
    async with two_nodes(tmp_path, pg_url) as cluster:
        apis = await _sessions(cluster.a, "ann", "bob", "cat", "dan")
        nodes = [cluster.a, cluster.b, cluster.a, cluster.b]
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(ws_connect(node, api.token))
                for node, api in zip(nodes, apis, strict=True)
            ]
            for client in clients:
                await client.join()
            received: list[list[dict[str, Any]]] = [[] for _ in clients]
            total = per_sender * len(clients)

            async def send_all(client: WsClient, who: int) -> None:
                for i in range(per_sender):
                    await client.say(f"{who}:{i}")

            async def read_all(client: WsClient, into: list[dict[str, Any]]) -> None:
                into.extend(await _collect(client, total))

            async with trio.open_nursery() as nursery:
                for i, client in enumerate(clients):
                    nursery.start_soon(send_all, client, i)
                    nursery.start_soon(read_all, client, received[i])
        orders = [[(m["seq"], m["text"]) for m in got] for got in received]
        assert [seq for seq, _ in orders[0]] == list(range(1, total + 1))  # each once, in order
        assert all(order == orders[0] for order in orders)  # one order on both nodes
        texts = {text for _, text in orders[0]}
        assert texts == {f"{w}:{i}" for w in range(len(clients)) for i in range(per_sender)}


async def test_scaleout_logout_through_a_closes_the_socket_on_b_with_4001(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_nodes(tmp_path, pg_url) as cluster:
        (ann,) = await _sessions(cluster.a, "ann")
        async with ws_connect(cluster.b, ann.token) as on_b:
            await on_b.join()
            await Api(cluster.a.http, ann.token).call("DELETE", "/api/sessions")
            assert await on_b.closed() == 4001
        with pytest.raises(HttpError) as refused:
            await Api(cluster.b.http, ann.token).get("/api/me")
        assert refused.value.status == 401


async def test_scaleout_admin_actions_through_a_reach_the_sockets_on_b(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_nodes(tmp_path, pg_url) as cluster:
        root, bob = await _sessions(cluster.a, "root", "bob")
        done = await run_cli(
            ["admin", "promote", "root"], cli_env(tmp_path / "cli", NOCHAT_DATABASE_URL=pg_url)
        )
        assert done.returncode == 0, done.stderr
        await root.post("/api/rooms", {"name": "club", "private": True})
        await root.post("/api/rooms/club/members", {"user": "bob"})
        async with ws_connect(cluster.b, bob.token) as bob_ws:
            await bob_ws.join()
            await bob_ws.join("club")
            await bob_ws.send(type="send", room="general", text="hi", client_id="b0", ref=0)
            await bob_ws.expect("ack", ref=0)  # B has read (and cached) bob's mute state
            await root.post("/api/admin/users/bob/mute", {"seconds": 600})
            # B learns of it through Redis: send until refused, within a bound.
            with trio.fail_after(STEP_S):
                for ref in itertools.count(1):
                    await bob_ws.send(
                        type="send", room="general", text="x", client_id=f"b{ref}", ref=ref
                    )
                    reply = await bob_ws.recv()
                    while reply.get("ref") != ref:
                        reply = await bob_ws.recv()
                    if reply["type"] == "error":
                        assert reply["code"] == "muted"
                        break
            await root.call("DELETE", "/api/rooms/club/members/bob")
            left = await bob_ws.expect("left", room="club")
            assert left["reason"] == "removed"
            async with ws_connect(cluster.b, root.token) as root_ws:
                await root_ws.join()
                listed = (await root.get("/api/admin/connections"))["connections"]
                assert sorted(c["user"] for c in listed) == ["bob", "root"]  # both on B
                assert len({c["node"] for c in listed}) == 1
                (mine,) = [c for c in listed if c["user"] == "root"]
                await root.call("DELETE", f"/api/admin/connections/{mine['id']}")
                assert await root_ws.closed() == 4004
            await root.post("/api/admin/users/bob/ban", {})
            assert await bob_ws.closed() == 4003
        with pytest.raises(HttpError) as refused:
            await Api(cluster.b.http).post(
                "/api/sessions", {"name": "bob", "password": "correct horse"}
            )
        assert (refused.value.status, refused.value.body["error"]["code"]) == (403, "banned")


async def test_scaleout_member_added_through_a_joins_through_b_at_once(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_nodes(tmp_path, pg_url) as cluster:
        ann, bob = await _sessions(cluster.a, "ann", "bob")
        bob_on_b = Api(cluster.b.http, bob.token)
        await ann.post("/api/rooms", {"name": "team", "private": True})
        async with ws_connect(cluster.b, bob.token) as bob_ws:
            await bob_ws.send(type="join", room="team")
            assert (await bob_ws.expect("error"))["code"] == "not_found"  # not a member yet
            with pytest.raises(HttpError):
                await bob_on_b.get("/api/rooms/team/messages")
            await ann.post("/api/rooms/team/members", {"user": "bob"})
            joined = await bob_ws.join("team")  # at once: no wait, no retry
            assert sorted(joined["members"]) == ["ann", "bob"]
            async with ws_connect(cluster.a, ann.token) as ann_ws:
                await ann_ws.join("team")
                await ann_ws.say("welcome", room="team")
                (message,) = await _collect(bob_ws, 1, "team")
        assert message["text"] == "welcome" and message["user"] == "ann"


# --workers


async def test_scaleout_workers_refuse_to_start_without_redis_or_with_sqlite(
    tmp_path: Path,
) -> None:
    no_redis = await run_cli(["serve", "--workers", "2", "--port", "0"], cli_env(tmp_path / "d"))
    assert no_redis.returncode == 2
    (line,) = no_redis.stderr.decode().splitlines()
    assert "workers=2 needs Redis (NOCHAT_REDIS_URL)" in line
    sqlite = await run_cli(
        ["serve", "--workers", "2", "--port", "0"],
        cli_env(tmp_path / "d", NOCHAT_REDIS_URL="redis://127.0.0.1:6379/0"),
    )
    assert sqlite.returncode == 2
    (line,) = sqlite.stderr.decode().splitlines()
    assert "needs PostgreSQL (NOCHAT_DATABASE_URL)" in line


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(child) for child in children.read().split()]


def _worker_of(workers: list[int], client_port: int) -> int:
    """The worker process holding the server end of the TCP connection from client_port."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == client_port:
                    inodes.add(fields[9])
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


async def test_scaleout_two_workers_on_one_port_chat_and_stop_on_sigterm(
    tmp_path: Path, pg_url: str
) -> None:
    async with (
        running_redis(tmp_path / "redis") as redis,
        cli_server(
            tmp_path / "d",
            "--workers",
            "2",
            NOCHAT_REDIS_URL=redis.url,
            NOCHAT_DATABASE_URL=pg_url,
            NOCHAT_SECRET="test-secret",
        ) as (parent, base),
    ):
        port = int(base.rsplit(":", 1)[1])
        with trio.fail_after(STEP_S):
            while len(workers := _children(parent.pid)) < 2:  # noqa: ASYNC110 (another process)
                await trio.sleep(0.05)

        @dataclass
        class Node:
            port: int

        node = Node(port)
        api = Api(base)
        users = [await api.signup(f"u{i}") for i in range(2)]
        async with AsyncExitStack() as stack:
            by_worker: dict[int, WsClient] = {}
            for _ in range(64):  # the kernel picks the worker: connect until both are used
                client = await stack.enter_async_context(
                    ws_connect(node, users[len(by_worker)].token)
                )
                await client.join()
                pid = _worker_of(workers, client.conn.local.port)  # type: ignore[union-attr]
                if pid not in by_worker:
                    by_worker[pid] = client
                if len(by_worker) == 2:
                    break
            assert len(by_worker) == 2, "64 connections all went to one worker"
            one, two = by_worker.values()
            await one.say("from one")
            await two.say("from two")
            got = [[m["text"] for m in await _collect(c, 2)] for c in (one, two)]
            assert got[0] == got[1] and sorted(got[0]) == ["from one", "from two"]
            parent.send_signal(signal.SIGTERM)
            assert await one.closed() == 1012
            assert await two.closed() == 1012
        with trio.fail_after(STEP_S * 2):
            await parent.wait()
        assert parent.returncode == 0
        for pid in workers:
            assert _gone(pid)


async def test_scaleout_a_worker_that_dies_stops_the_others_and_the_parent_exits_1(
    tmp_path: Path, pg_url: str
) -> None:
    async with (
        running_redis(tmp_path / "redis") as redis,
        cli_server(
            tmp_path / "d",
            "--workers",
            "2",
            NOCHAT_REDIS_URL=redis.url,
            NOCHAT_DATABASE_URL=pg_url,
            NOCHAT_SECRET="test-secret",
        ) as (parent, _),
    ):
        with trio.fail_after(STEP_S):
            while len(workers := _children(parent.pid)) < 2:  # noqa: ASYNC110 (another process)
                await trio.sleep(0.05)
        os.kill(workers[0], signal.SIGKILL)
        with trio.fail_after(STEP_S * 2):
            await parent.wait()
        assert parent.returncode == 1
        assert all(_gone(pid) for pid in workers)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.startswith("State:\tZ") for line in status)
    except FileNotFoundError:
        return True


async def test_scaleout_typing_reaches_the_room_on_the_other_node(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_nodes(tmp_path, pg_url) as cluster:
        ann, bob = await _sessions(cluster.a, "ann", "bob")
        async with (
            ws_connect(cluster.a, ann.token) as on_a,
            ws_connect(cluster.b, bob.token) as on_b,
        ):
            await on_a.join()
            await on_b.join()
            # B's node subscribes to the room before it serves B's next frame: once B's
            # own message comes back, A's typing (never stored, never backfilled) reaches it.
            await on_b.say("here")
            await on_b.messages(1)
            await on_a.send(type="typing", room="general")
            with trio.fail_after(STEP_S):
                while (event := await on_b.recv())["type"] != "typing":
                    pass
        assert event == {"type": "typing", "room": "general", "user": "ann"}


async def _history(api: Api, room: str = "general") -> list[dict[str, Any]]:
    page = await api.get(f"/api/rooms/{room}/messages?after=0&limit=200")
    return list(page["messages"])


async def test_scaleout_kill_9_of_a_clients_resume_on_b_with_exactly_the_acked_messages(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_nodes(tmp_path, pg_url) as cluster:
        ann, bob = await _sessions(cluster.a, "ann", "bob")
        sent: list[str] = []  # client_ids in the order ann sent them
        acked: dict[str, int] = {}
        seen: list[int] = []  # seqs bob received, over both of his sockets
        async with (
            ws_connect(cluster.a, ann.token) as ann_a,
            ws_connect(cluster.a, bob.token) as bob_a,
        ):
            await ann_a.join()
            await bob_a.join()
            for i in range(10):
                sent.append(await ann_a.say(f"m{i}"))
            for _ in range(5):  # some acks are in; the rest are in flight when A dies
                ack = await ann_a.expect("ack")
                acked[ack["client_id"]] = ack["seq"]
            seen += [m["seq"] for m in await _collect(bob_a, 3)]
            cluster.a.process.kill()  # kill -9, mid-stream
            with trio.fail_after(STEP_S):
                await cluster.a.process.wait()
        async with (
            ws_connect(cluster.b, ann.token) as ann_b,
            ws_connect(cluster.b, bob.token) as bob_b,
        ):
            await ann_b.join()
            joined = await bob_b.join(since=seen[-1])
            for i, client_id in enumerate(sent):  # retry every send not acked, same client_id
                if client_id not in acked:
                    await ann_b.say(f"m{i}", client_id=client_id)
            while len(acked) < len(sent):
                ack = await ann_b.expect("ack")
                acked[ack["client_id"]] = ack["seq"]
            await ann_b.say("after")
            rest = await _collect(bob_b, joined["head_seq"] - seen[-1])
            seen += [m["seq"] for m in rest]
            while seen[-1] < max(acked.values()) + 1:
                seen += [m["seq"] for m in await _collect(bob_b, 1)]
        history = await _history(Api(cluster.b.http, bob.token))
    client_ids = [m["client_id"] for m in history]
    assert client_ids[:-1] == sorted(sent, key=lambda c: acked[c])  # each send stored once
    assert len(set(client_ids)) == len(client_ids) == len(sent) + 1
    assert seen == list(range(1, len(sent) + 2))  # every seq once, in order, none twice


async def _readyz(node: ServerProcess) -> dict[str, Any]:
    try:
        return dict(await Api(node.http).get("/readyz"))
    except HttpError as exc:
        return dict(exc.body)


async def _wait_ready(node: ServerProcess, status: str) -> None:
    with trio.fail_after(STEP_S * 2):
        while (await _readyz(node))["status"] != status:  # noqa: ASYNC110 (another process)
            await trio.sleep(0.05)


@pytest.mark.parametrize("outage", ["restart", "client_kill"])
async def test_scaleout_redis_outage_loses_no_acked_message(
    tmp_path: Path, pg_url: str, outage: str
) -> None:
    async with two_nodes(tmp_path, pg_url) as cluster:
        ann, bob = await _sessions(cluster.a, "ann", "bob")
        async with (
            ws_connect(cluster.a, ann.token) as ann_a,
            ws_connect(cluster.b, bob.token) as bob_b,
        ):
            await ann_a.join()
            await bob_b.join()
            seqs = []
            for i in range(5):
                await ann_a.say(f"before {i}")
                seqs.append((await ann_a.expect("ack"))["seq"])
            if outage == "restart":
                await cluster.redis.stop()
                await _wait_ready(cluster.a, "degraded")
                for i in range(5):  # committed and acked while Redis is down
                    await ann_a.say(f"during {i}")
                    seqs.append((await ann_a.expect("ack"))["seq"])
                assert (await _readyz(cluster.b))["status"] == "degraded"
                await cluster.redis.start()
            else:
                assert await cluster.redis.kill_pubsub_clients() >= 2
                for i in range(5):  # sent while the subscriptions are gone
                    await ann_a.say(f"during {i}")
                    seqs.append((await ann_a.expect("ack"))["seq"])
            await _wait_ready(cluster.a, "ready")
            await _wait_ready(cluster.b, "ready")
            for i in range(3):
                await ann_a.say(f"after {i}")
                seqs.append((await ann_a.expect("ack"))["seq"])
            got = [m["seq"] for m in await _collect(bob_b, len(seqs))]
    assert got == seqs == list(range(1, 14))  # every acked message, once, in order


async def test_scaleout_postgres_stopped_sends_get_unavailable_and_the_node_recovers(
    tmp_path: Path, own_postgres: PgServer
) -> None:
    url = own_postgres.create_database()
    async with two_nodes(tmp_path, url) as cluster:
        (ann,) = await _sessions(cluster.a, "ann")
        async with ws_connect(cluster.a, ann.token) as ann_a:
            await ann_a.join()
            await ann_a.say("one", client_id="one")
            assert (await ann_a.expect("ack"))["seq"] == 1
            await trio.to_thread.run_sync(own_postgres.stop, "fast")
            await ann_a.say("two", client_id="two")
            with trio.fail_after(STEP_S):
                while (event := await ann_a.recv())["type"] not in ("ack", "error"):
                    pass
            assert event["type"] == "error" and event["code"] == "unavailable"  # never an ack
            with pytest.raises(HttpError) as read:
                await _history(Api(cluster.b.http, ann.token))
            assert read.value.status == 503
            await trio.to_thread.run_sync(own_postgres.start)
            with trio.fail_after(RECOVERY_S):
                while True:  # the pool reconnects by itself; poll across the process boundary
                    await ann_a.say("two", client_id="two")
                    event = await ann_a.recv()
                    while event["type"] not in ("ack", "error"):
                        event = await ann_a.recv()
                    if event["type"] == "ack":
                        break
                    await trio.sleep(0.2)
        assert event["seq"] == 2
        assert [m["text"] for m in await _history(Api(cluster.b.http, ann.token))] == ["one", "two"]
