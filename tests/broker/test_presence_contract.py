"""The PresenceBoard contract, one suite for every board: local (one process) and Redis.

A "node" is one board; its `announce` records what the rooms were told. With the local
board every node asked for is the same one (two sockets on one node behave like sockets
on two nodes: online once); tests about dead nodes or about Redis itself say so and skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
import trio.testing

from nochat.broker.presence import LocalPresence, PresenceBoard
from nochat.broker.presence_redis import RedisPresence

from ..services_redis import RedisServer, running_redis
from ..support import STEP_S
from .test_contract import COREDIS_REFUSED_LEAK

pytestmark = pytest.mark.filterwarnings(COREDIS_REFUSED_LEAK)

#: Long: no lease expires by accident on a busy machine.
LEASE_S = 30.0
#: Short, for the tests where a node dies.
QUICK_LEASE_S = 0.6
#: A board notices Redis went away at its next lease refresh (lease / 3 here).
RESTART_LEASE_S = 3.0


@dataclass(eq=False)
class Node:
    board: PresenceBoard
    scope: trio.CancelScope
    told: list[tuple[str, str, str]] = field(default_factory=list)
    #: The changes told with batch=True (many at once: a dead node's users).
    batched: list[tuple[str, str, str]] = field(default_factory=list)
    _news: trio.Event = field(default_factory=trio.Event)

    def __post_init__(self) -> None:
        self.board.announce = self._record

    def _record(self, room: str, user: str, state: str, *, batch: bool = False) -> None:
        self.told.append((room, user, state))
        if batch:
            self.batched.append((room, user, state))
        self._news.set()
        self._news = trio.Event()

    async def told_of(self, n: int) -> list[tuple[str, str, str]]:
        with trio.fail_after(STEP_S):
            while len(self.told) < n:
                await self._news.wait()
        return self.told

    def kill(self) -> None:
        """As kill -9: its tasks stop, nothing is cleaned up, its lease just runs out."""
        self.scope.cancel()


@dataclass
class Cluster:
    backend: str
    nursery: trio.Nursery
    redis: RedisServer | None = None
    made: list[Node] = field(default_factory=list)

    @property
    def multi_node(self) -> bool:
        return self.redis is not None

    async def nodes(self, k: int, *, lease_s: float = LEASE_S) -> list[Node]:
        """k nodes, registered with Redis (local: one node, k times)."""
        if self.redis is None:
            node = await self._node(LocalPresence())
            return [node] * k
        url = self.redis.url
        made = [
            await self._node(RedisPresence(url, lease_s=lease_s, refresh_s=lease_s / 3))
            for _ in range(k)
        ]
        await self.settle()
        return made

    async def _node(self, board: PresenceBoard) -> Node:
        scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await board.run(task_status=task_status)

        await self.nursery.start(run)
        node = Node(board, scope)
        self.made.append(node)
        return node

    async def registered(self, times: int) -> None:
        """Until every live node has registered `times` times (polls: Redis restarts)."""
        with trio.fail_after(STEP_S):
            for node in self.made:
                board = node.board
                assert isinstance(board, RedisPresence)
                while board.registrations < times:  # noqa: ASYNC110 (across Redis)
                    await trio.sleep(0.01)

    async def settle(self) -> None:
        """Until every live node's changes are in Redis (and announced)."""
        await trio.testing.wait_all_tasks_blocked()
        with trio.fail_after(STEP_S):
            for node in self.made:
                if isinstance(node.board, RedisPresence) and not node.scope.cancel_called:
                    await node.board.wait_synced()


@pytest.fixture(params=["local", "redis"])
async def cluster(
    request: pytest.FixtureRequest, nursery: trio.Nursery, tmp_path: Path
) -> AsyncIterator[Cluster]:
    if request.param == "redis":
        async with running_redis(tmp_path / "redis") as redis:
            yield Cluster(request.param, nursery, redis)
    else:
        yield Cluster(request.param, nursery)


def _connect(node: Node, user: str, *rooms: str) -> None:
    node.board.connect(user)
    for room in rooms:
        node.board.enter(room, user)


def _disconnect(node: Node, user: str, *rooms: str) -> None:
    for room in rooms:
        node.board.leave(room, user)
    node.board.disconnect(user)


async def test_presence_a_user_on_two_nodes_is_online_once(cluster: Cluster) -> None:
    a, b = await cluster.nodes(2)
    _connect(a, "ann", "r")
    await cluster.settle()
    assert a.told == [("r", "ann", "online")]
    _connect(b, "ann", "r")  # already online via a: nothing new
    await cluster.settle()
    _disconnect(a, "ann", "r")  # still on b: nothing
    await cluster.settle()
    assert a.told + (b.told if cluster.multi_node else []) == [("r", "ann", "online")]
    assert await b.board.is_online("ann") and await a.board.is_online("ann")
    _disconnect(b, "ann", "r")
    await cluster.settle()
    assert b.told[-1] == ("r", "ann", "offline")
    assert not await a.board.is_online("ann")


async def test_presence_two_nodes_entering_at_once_announce_once(cluster: Cluster) -> None:
    nodes = await cluster.nodes(4)
    for i in range(20):  # each user enters through every node in the same instant
        for node in nodes:
            _connect(node, f"u{i}", "r")
    await cluster.settle()
    told = [t for node in dict.fromkeys(nodes) for t in node.told]
    assert sorted(told) == sorted(("r", f"u{i}", "online") for i in range(20))
    for node in nodes:
        _disconnect(node, "u0", "r")
    await cluster.settle()
    told = [t for node in dict.fromkeys(nodes) for t in node.told]
    assert told.count(("r", "u0", "offline")) == 1


async def test_presence_summary_and_online_count_cover_every_node(cluster: Cluster) -> None:
    a, b = await cluster.nodes(2)
    _connect(a, "ann", "r")
    _connect(a, "bob", "r", "other")
    await cluster.settle()
    _connect(b, "cat", "r")  # not sent to Redis yet: b counts its own at once
    assert await b.board.online_summary("r", 10) == {
        "online": ["ann", "bob", "cat"],
        "online_count": 3,
    }
    _disconnect(a, "bob", "r", "other")
    assert await a.board.online_summary("r", 10) == {
        "online": ["ann", "cat"],
        "online_count": 2,
    }
    await cluster.settle()
    summary = await b.board.online_summary("r", 1)  # at most `most` names, every one counted
    assert summary["online_count"] == 2 and len(summary["online"]) == 1  # type: ignore[arg-type]
    assert await b.board.online_summary("other", 10) == {"online": [], "online_count": 0}
    assert (a.board.connections_of("ann"), b.board.connections_of("cat")) == (1, 1)


def _redis(cluster: Cluster) -> RedisServer:
    if cluster.redis is None:
        pytest.skip("about several nodes in Redis")
    return cluster.redis


async def test_presence_a_dead_nodes_users_go_offline_where_nobody_else_holds_them(
    cluster: Cluster,
) -> None:
    redis = _redis(cluster)
    a, b, c = await cluster.nodes(3, lease_s=QUICK_LEASE_S)
    _connect(a, "ann", "r", "s")
    _connect(a, "dan", "r")
    _connect(b, "dan", "r")  # dan is on b as well: stays online
    await cluster.settle()
    a.kill()
    started = trio.current_time()
    reaped: list[tuple[str, str, str]] = []
    with trio.fail_after(STEP_S):
        while len(reaped) < 2:  # ann offline in r and in s, told by whichever node reaped
            reaped = [t for node in (b, c) for t in node.told if t[2] == "offline"]
            await trio.sleep(0.01)  # polling: the lease runs out in Redis, another process
    elapsed = trio.current_time() - started
    await cluster.settle()
    reaped = [t for node in (b, c) for t in node.told if t[2] == "offline"]
    assert sorted(reaped) == [("r", "ann", "offline"), ("s", "ann", "offline")]  # once each
    assert sorted(b.batched + c.batched) == sorted(reaped)  # sent together in big rooms
    assert elapsed <= QUICK_LEASE_S + QUICK_LEASE_S / 3 + 0.5  # lease + one reaping round
    assert not await b.board.is_online("ann") and await c.board.is_online("dan")
    assert await c.board.online_summary("r", 10) == {"online": ["dan"], "online_count": 1}
    dead = a.board.node_id  # type: ignore[attr-defined]
    assert await redis.command("EXISTS", f"nochat:presence:of:{dead}.1") == ":0"  # cleaned up
    assert await redis.command("SCARD", "nochat:presence:nodes") == ":2"


async def test_presence_redis_restart_re_registers_every_connection(cluster: Cluster) -> None:
    redis = _redis(cluster)
    a, b = await cluster.nodes(2, lease_s=RESTART_LEASE_S)
    _connect(a, "ann", "r")
    await cluster.settle()
    await redis.restart()  # Redis forgets everything
    await cluster.registered(2)
    _connect(b, "bob", "r")
    await cluster.settle()
    assert await b.board.online_summary("r", 10) == {"online": ["ann", "bob"], "online_count": 2}
    assert await b.board.is_online("ann")


async def test_presence_redis_down_degrades_to_this_nodes_counts(cluster: Cluster) -> None:
    redis = _redis(cluster)
    a, b = await cluster.nodes(2, lease_s=RESTART_LEASE_S)
    _connect(a, "ann", "r")
    _connect(b, "bob", "r")
    await cluster.settle()
    await redis.stop()
    with trio.fail_after(STEP_S):
        while a.board.registered:  # type: ignore[attr-defined]  # noqa: ASYNC110 (Redis)
            await trio.sleep(0.01)
    _connect(a, "cat", "r")  # told at once, here: nobody else can be
    assert a.told[-1] == ("r", "cat", "online")
    assert await a.board.online_summary("r", 10) == {"online": ["ann", "cat"], "online_count": 2}
    _disconnect(a, "ann", "r")
    assert a.told[-1] == ("r", "ann", "offline")
    assert not await a.board.is_online("ann")
    await redis.start()
    await cluster.registered(2)
    await cluster.settle()
    assert await b.board.online_summary("r", 10) == {"online": ["bob", "cat"], "online_count": 2}


async def test_presence_a_registration_longer_than_the_lease_keeps_it(
    cluster: Cluster,
) -> None:
    redis = _redis(cluster)
    (node,) = await cluster.nodes(1, lease_s=1.5)  # refreshed every 0.5 s
    board = node.board
    assert isinstance(board, RedisPresence)
    for i in range(25_000):
        _connect(node, f"u{i}", "r")
    with trio.fail_after(STEP_S * 3):
        await board.wait_synced()
    # Registering the 50,000 entries again takes longer than the lease (~2.7 s on this
    # 2-core machine): the lease must be kept meanwhile, or it starts over and over.
    await redis.restart()
    await cluster.registered(2)
    with trio.fail_after(STEP_S * 3):
        await board.wait_synced()
    assert board.registrations == 2  # the lease was kept all along, never lost and retaken
    assert (await board.online_summary("r", 0))["online_count"] == 25_000
