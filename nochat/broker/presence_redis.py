"""RedisPresence: who is online over every node, from per-node leases in Redis.

Policy.
- Each node runs as an *incarnation* (`<node id>.<n>`, a new n on every connect to
  Redis) holding a lease: a key with a TTL of `lease_s`, refreshed every `refresh_s`.
  Its entries (a user connected; a user present in a room) are a set under it, and a
  counter per room says how many incarnations hold each user (presence_scripts.py).
- This node's own counts stay in `Presence` (what it knows without asking). A change
  that matters (a user's first socket here in a room, or their last) marks the entry
  dirty; the sync task sends dirty entries to Redis in one script call per chunk, and
  the script's answer says who just came online or went offline over the cluster: only
  then does the room hear it. A user already online via another node comes online
  nowhere; one still on another node goes offline nowhere. No Redis call per frame, and
  none per socket beyond its own entries.
- Every node, every `refresh_s`, reaps incarnations whose lease has gone (a node killed
  with -9, or cut off for longer than `lease_s`): their users go offline where nobody
  else holds them, announced by whichever node's script got there first (the others
  find nothing left). So a dead node's users are offline everywhere within
  `lease_s + refresh_s` (12 s by default), plus one delivery.
- Redis down: the node counts presence locally, as one node does (its own rooms hear
  its own changes; other nodes' users are not seen). When Redis returns it registers a
  new incarnation with every entry it holds (whatever Redis lost with a restart comes
  back), then retires the old one: users who left meanwhile go offline, none flickers.
"""

from __future__ import annotations

import logging
import random
import secrets

import coredis
import trio
from coredis.retry import NoRetryPolicy

from ..presence import Presence
from . import presence_scripts as lua
from .presence import Announce, Summary, ignore
from .redis import BACKOFF_BASE_S, BACKOFF_MAX_S, REDIS_ERRORS

log = logging.getLogger(__name__)

#: Most entries one script call adds, removes or reaps (a big change waits a few calls,
#: Redis never runs one long script).
CHUNK = 500
#: Longest a join or a status read waits for Redis before it answers from this node's
#: counts (Redis is slow or gone: the answer is partial, never late).
QUERY_S = 1.0


class LeaseLost(Exception):
    """This node's lease expired (it was taken for dead): it registers anew."""


def _lease(inc: str) -> str:
    return f"{lua.PREFIX}lease:{inc}"


def _entries(inc: str) -> str:
    return f"{lua.PREFIX}of:{inc}"


def _counter(room: str) -> str:
    return f"{lua.PREFIX}users" if room == "" else f"{lua.PREFIX}room:{room}"


class RedisPresence:
    def __init__(
        self, url: str, *, lease_s: float, refresh_s: float, node_id: str | None = None
    ) -> None:
        self.url = url
        self.lease_ms = int(lease_s * 1000)
        self.refresh_s = refresh_s
        self.node_id = node_id or secrets.token_hex(8)
        self.local = Presence()
        self.announce: Announce = ignore
        self._generation = 0
        #: The registered incarnation; None while Redis is away (presence is local).
        self._incarnation: str | None = None
        self._client: coredis.Redis[str] | None = None
        #: Earlier incarnations of this node, to retire once the new one is in.
        self._retiring: list[str] = []
        #: Entries whose state in Redis may differ from this node's: room -> users.
        self._dirty: dict[str, set[str]] = {}
        #: Entries this incarnation holds in Redis.
        self._pushed: set[tuple[str, str]] = set()
        self._inflight = 0
        self._wake = trio.Event()
        self._progress = trio.Event()
        self.registrations = 0
        self.reaped = 0

    # ---- this node's sockets (sync: called from code that never awaits) -----------

    def connect(self, user: str) -> None:
        self.local.connect(user)
        if self.local.connections_of(user) == 1:
            self._mark("", user)

    def disconnect(self, user: str) -> None:
        self.local.disconnect(user)
        if not self.local.connections_of(user):
            self._mark("", user)

    def enter(self, room: str, user: str) -> None:
        if self.local.enter(room, user):
            self._mark(room, user)
            if self._incarnation is None:
                self.announce(room, user, "online")

    def leave(self, room: str, user: str) -> None:
        if self.local.leave(room, user):
            self._mark(room, user)
            if self._incarnation is None:
                self.announce(room, user, "offline")

    def connections_of(self, user: str) -> int:
        return self.local.connections_of(user)

    def rooms_of(self, user: str) -> list[str]:
        return self.local.rooms_of(user)

    def online_users(self) -> int:
        return self.local.online_users()

    @property
    def registered(self) -> bool:
        """Whether presence is cluster-wide now (False: Redis is away, it is local)."""
        return self._incarnation is not None

    # ---- the cluster's view ------------------------------------------------------

    async def online_summary(self, room: str, most: int) -> Summary:
        """Redis's count for the room, corrected by this node's changes not sent yet."""
        pending = self._pending(room, most)
        reply = await self._summary(room, most, [user for user, _, _ in pending])
        if reply is None:
            return self.local.online_summary(room, most)
        count, names, values = reply
        for (user, wanted, pushed), value in zip(pending, values, strict=True):
            counted = value > 0
            present = wanted or value - pushed > 0
            count += present - counted
            if present:
                names.add(user)
            else:
                names.discard(user)
        return {"online": sorted(names)[:most], "online_count": count}

    async def is_online(self, user: str) -> bool:
        if self.local.connections_of(user):
            return True
        reply = await self._summary("", 0, [user])
        if reply is None:
            return False
        (value,) = reply[2]
        return value - (("", user) in self._pushed) > 0

    def _pending(self, room: str, most: int) -> list[tuple[str, bool, bool]]:
        users = list(self._dirty.get(room, ()))[:most]
        return [(u, self._wanted(room, u), (room, u) in self._pushed) for u in users]

    async def _summary(
        self, room: str, most: int, users: list[str]
    ) -> tuple[int, set[str], list[int]] | None:
        client = self._client
        if client is None:
            return None
        with trio.move_on_after(QUERY_S):
            try:
                reply = await client.eval(
                    lua.SUMMARY, keys=[_counter(room)], args=[str(most), *users]
                )
            except REDIS_ERRORS:
                log.info("presence read from Redis failed; answering with this node's")
                return None
            assert isinstance(reply, list)
            n = int(reply[1])
            names = {str(name) for name in reply[2 : 2 + n]}
            return int(reply[0]), names, [int(v) for v in reply[2 + n :]]
        log.info("presence read from Redis timed out; answering with this node's")
        return None

    # ---- sync with Redis ---------------------------------------------------------

    def _mark(self, room: str, user: str) -> None:
        self._dirty.setdefault(room, set()).add(user)
        self._wake.set()

    def _wanted(self, room: str, user: str) -> bool:
        if room == "":
            return self.local.connections_of(user) > 0
        return self.local.is_in(room, user)

    def _take(self) -> list[str]:
        """Up to CHUNK dirty entries whose state in Redis is not this node's, as script
        arguments (op, room, user, …); entries already in step are dropped."""
        args: list[str] = []
        while self._dirty and len(args) < 3 * CHUNK:
            room, users = next(iter(self._dirty.items()))
            while users and len(args) < 3 * CHUNK:
                user = users.pop()
                wanted = self._wanted(room, user)
                if wanted != ((room, user) in self._pushed):
                    args += ["+" if wanted else "-", room, user]
            if not users:
                del self._dirty[room]
        return args

    async def _flush(self, client: coredis.Redis[str], inc: str) -> None:
        """Send every dirty entry; announce who came online or went offline."""
        while args := self._take():
            self._inflight += 1
            done = False
            try:
                reply = await client.eval(lua.APPLY, keys=[_lease(inc), _entries(inc)], args=args)
                assert isinstance(reply, list)
                if reply[0] == "lost":
                    raise LeaseLost
                done = True
            finally:
                self._inflight -= 1
                if not done:  # the next incarnation sends them (and degraded mode shows them)
                    for i in range(0, len(args), 3):
                        self._mark(args[i + 1], args[i + 2])
            for i in range(0, len(args), 3):
                if args[i] == "+":
                    self._pushed.add((args[i + 1], args[i + 2]))
                else:
                    self._pushed.discard((args[i + 1], args[i + 2]))
            self._publish([str(x) for x in reply[1:]])
        self._step()

    async def _reap(self, client: coredis.Redis[str]) -> None:
        """Empty the entries of every incarnation whose lease has gone (any node's)."""
        while True:
            reply = await client.eval(lua.REAP, keys=[], args=[str(CHUNK)])
            assert isinstance(reply, list)
            transitions = [str(x) for x in reply[1:]]
            self.reaped += len(transitions) // 3
            self._publish(transitions, batch=True)
            if reply[0] != "more":
                return

    def _publish(self, transitions: list[str], *, batch: bool = False) -> None:
        for i in range(0, len(transitions), 3):
            op, room, user = transitions[i : i + 3]
            if room:
                self.announce(room, user, "online" if op == "+" else "offline", batch=batch)

    def _step(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    async def wait_synced(self) -> None:
        """Until registered with Redis and every change sent (tests)."""
        while not (self._incarnation is not None and not self._dirty and not self._inflight):
            await self._progress.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Register, sync and reap; on any loss go local and reconnect with backoff.

        Starts at once, local, even when Redis is down: the node serves meanwhile."""
        task_status.started()
        attempt = 0
        while True:
            try:
                await self._session()
            except* (*REDIS_ERRORS, LeaseLost) as group:
                log.warning("presence is local until Redis returns (%s)", _leaf(group))
            if self._incarnation is not None:
                attempt = 0
            self._go_local()
            cap = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt)
            attempt = min(attempt + 1, 32)
            await trio.sleep(random.uniform(0, cap))

    async def _session(self) -> None:
        client = coredis.Redis.from_url(
            self.url, decode_responses=True, retry_policy=NoRetryPolicy()
        )
        async with client:
            self._generation += 1
            inc = f"{self.node_id}.{self._generation}"
            await client.eval(
                lua.REGISTER, keys=[_lease(inc), _entries(inc)], args=[str(self.lease_ms), inc]
            )
            self._incarnation, self._client = inc, client
            self.registrations += 1
            self._pushed = set()
            for room, user in self.local.entries():  # re-register everything held here
                self._mark(room, user)
            for user in self.local.users():
                self._mark("", user)
            async with trio.open_nursery() as nursery:
                # The lease is kept from the start: re-registering a big node takes a
                # while, and a lease lost meanwhile would start it all over again.
                nursery.start_soon(self._keep_lease, client, inc)
                await self._flush(client, inc)
                if self._retiring:  # the new one holds them all now: the old ones may go
                    await client.delete([_lease(old) for old in self._retiring])
                    self._retiring = []
                await self._reap(client)
                while True:
                    await self._wake.wait()
                    self._wake = trio.Event()
                    await self._flush(client, inc)

    async def _keep_lease(self, client: coredis.Redis[str], inc: str) -> None:
        while True:
            await trio.sleep(self.refresh_s)
            if await client.eval(lua.REFRESH, keys=[_lease(inc)], args=[str(self.lease_ms)]) != 1:
                raise LeaseLost
            await self._reap(client)

    def _go_local(self) -> None:
        """Redis is away: count locally, and show this node's rooms the changes that were
        on their way to Redis (nobody else will)."""
        if self._incarnation is not None:
            self._retiring.append(self._incarnation)
        self._incarnation, self._client = None, None
        for room, users in self._dirty.items():
            for user in users:
                wanted = self._wanted(room, user)
                if room and wanted != ((room, user) in self._pushed):
                    self.announce(room, user, "online" if wanted else "offline")
        self._step()


def _leaf(group: BaseExceptionGroup[BaseException]) -> str:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return type(leaf).__name__
