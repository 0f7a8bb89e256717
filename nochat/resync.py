"""After signals may have been missed: re-read what they would have changed.

Node-wide signals (the broker's `SignalKind`) travel over Redis pub/sub, which keeps
nothing for a subscriber that is not connected: a logout, ban, mute or member removal
signalled while this node's Redis link was down (or a signal whose PUBLISH failed on its
way out) never arrives. The broker says when that may have happened
(`SignalKind.RESYNC`: after every connect to Redis, and on every node when one lost a
signal of its own), and this service then does what lost signals would have done:

- at once, every cache they keep fresh is forgotten (live sessions, rooms and
  memberships, mutes), so the next request or send reads the store;
- then, in the background, every local connection is checked against the store: its
  session still live (else closed 4001), its account not deleted, disabled (4001) or
  banned (4003), each room it has joined still there (else `left` "deleted") and, if
  private, still its (`left` "removed"); the statuses of its users are re-read.

A pass costs a few store reads per local session, user and joined room; passes asked for
while one runs are done as one more pass after it.
"""

from __future__ import annotations

import logging

import trio

from .auth import Authenticator
from .broker import Broker, SignalKind, SignalPayload
from .errors import CloseCode, NoChatError
from .moderation import Moderation
from .rooms import RoomDirectory
from .sessions import ConnectionRegistry
from .status_book import StatusBook
from .store import Room, Store, now_ms

log = logging.getLogger(__name__)


class Resync:
    """Start with `await nursery.start(resync.run)`."""

    def __init__(
        self,
        store: Store,
        broker: Broker,
        *,
        auth: Authenticator,
        rooms: RoomDirectory,
        moderation: Moderation,
        connections: ConnectionRegistry,
        status: StatusBook,
    ) -> None:
        self._store = store
        self._auth = auth
        self._rooms = rooms
        self._moderation = moderation
        self._connections = connections
        self._status = status
        self._wanted = trio.Event()
        #: Passes made (tests wait for one).
        self.passes = 0
        self._passed = trio.Event()
        broker.on_signal(SignalKind.RESYNC, self._resync)

    def _resync(self, payload: SignalPayload) -> None:
        log.info("signals may have been missed (%s): re-reading", payload.get("why", "?"))
        self._auth.forget_cached()
        self._rooms.forget_all()
        self._moderation.forget_all()
        self._wanted.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            try:
                await self._check_connections()
            except NoChatError:  # the store is unavailable: the next resync tries again
                log.warning("connections not re-checked after missed signals")
            self.passes += 1
            self._passed.set()
            self._passed = trio.Event()

    async def wait_pass(self, count: int) -> None:
        """Wait until `count` passes have been made in all (tests)."""
        while self.passes < count:
            await self._passed.wait()

    async def _check_connections(self) -> None:
        conns = list(self._connections.all())
        live: dict[str, bool] = {}
        closes: dict[int, CloseCode | None] = {}
        rooms: dict[str, Room | None] = {}
        for conn in conns:
            session, user = conn.session, conn.user
            if session.id not in live:
                found = await self._store.session(session.id)
                live[session.id] = found is not None and found.expires_at_ms > now_ms()
            if user.id not in closes:
                closes[user.id] = await self._account_close(user.id)
                await self._status.reload(user)
            code = closes[user.id] or (None if live[session.id] else CloseCode.TOKEN_EXPIRED)
            if code is not None:
                self._auth.forget(session.id)
                conn.sub.close(code)
                continue
            for name in conn.joined_rooms():
                if name not in rooms:
                    rooms[name] = await self._store.room(name)
                room = rooms[name]
                if room is None:
                    conn.leave_room(name, "deleted")
                elif room.private and not await self._store.is_member(room, user):
                    conn.leave_room(name, "removed")

    async def _account_close(self, user_id: int) -> CloseCode | None:
        account = await self._store.account(user_id)
        if account is not None and account.banned_ms is not None:
            return CloseCode.BANNED
        if account is None or account.disabled_ms is not None:
            return CloseCode.TOKEN_EXPIRED
        return None
