"""Admins' decisions as this node applies them: who may write (mutes, archived rooms), and
the room-side signals (a member removed, a room changed, handed over or deleted).

Mutes are stored (the account's `muted_until`); this node caches each writer's, so a send
costs no store read, and forgets an account's entry on the broker's `account_changed`
signal, which every admin action on an account sends (to every node). A room's archived
flag lives on its `Room`, which the room directory caches and forgets on `room_changed`.
A cache filled from a read that started before a signal could hold what the signal
undid: each entry is kept only if no signal for it came while the read was in flight.
When signals may have been missed, resync.py has every entry read again (`forget_all`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from . import events, protocol
from .broker import Broker, SignalKind, SignalPayload
from .errors import Forbidden, Muted
from .rooms import RoomDirectory
from .sessions import ConnectionRegistry
from .store import Room, Store, User, now_ms

log = logging.getLogger(__name__)

#: Writers' mute states kept per node; past this the cache starts over (reads refill it).
MUTES_CACHED = 100_000


class Moderation:
    def __init__(
        self, store: Store, broker: Broker, rooms: RoomDirectory, connections: ConnectionRegistry
    ) -> None:
        self._store = store
        self._broker = broker
        self._rooms = rooms
        self._connections = connections
        #: user id → muted_until (ms) or None.
        self._mutes: dict[int, int | None] = {}
        #: Signals seen per user id while a read may be in flight (see the docstring).
        self._changes: dict[int, int] = {}
        #: Counts `forget_all`s: a read in flight across one caches nothing.
        self._epoch = 0
        #: Wall-clock ms that mutes end by (a test moves it past a mute's end).
        self.clock: Callable[[], int] = now_ms
        broker.on_signal(SignalKind.ACCOUNT_CHANGED, self._account_changed)
        broker.on_signal(SignalKind.MEMBER_REMOVED, self._member_removed)
        broker.on_signal(SignalKind.ROOM_CHANGED, self._room_changed)

    async def require_can_write(self, user: User, room: Room) -> None:
        """Forbidden `archived` in an archived room, Muted while the user is muted."""
        if room.archived:
            raise Forbidden("this room is archived: it can be read, not written", code="archived")
        until = await self._muted_until(user.id)
        if until is not None and until > self.clock():
            raise Muted(until)

    async def _muted_until(self, user_id: int) -> int | None:
        if user_id in self._mutes:
            return self._mutes[user_id]
        seen, epoch = self._changes.get(user_id, 0), self._epoch
        account = await self._store.account(user_id)
        until = None if account is None else account.muted_until
        if self._changes.get(user_id, 0) == seen and self._epoch == epoch:
            if len(self._mutes) >= MUTES_CACHED:
                self._mutes.clear()
            self._mutes[user_id] = until
        return until

    def forget_all(self) -> None:
        """Signals may have been missed (resync.py): every mute is read again."""
        self._mutes.clear()
        self._epoch += 1

    # ---- sending the signals -----------------------------------------------------------

    def member_removed(self, room: Room, user: User) -> None:
        """Every node takes `user` out of the room; the room's other sockets are told
        (`member_removed`, like typing: no seq, not stored), so their lists drop them."""
        payload = {"room": room.name, "room_id": str(room.id), "user": str(user.id)}
        self._broker.signal(SignalKind.MEMBER_REMOVED, payload)
        event = events.member_removed_event(room.name, user.name)
        self._broker.publish(room.name, protocol.encode(event))

    def room_changed(self, room: Room, *, gone: bool = False) -> None:
        self._broker.signal(
            SignalKind.ROOM_CHANGED, {"room": room.name, "gone": "1" if gone else ""}
        )

    def owner_changed(self, room: Room, owner: User) -> None:
        """Every node forgets the room (its owner is read again); its sockets are told."""
        self.room_changed(room)
        event = events.owner_changed_event(room.name, owner.name)
        self._broker.publish(room.name, protocol.encode(event))

    # ---- applying them on this node ----------------------------------------------------

    def _account_changed(self, payload: SignalPayload) -> None:
        user_id = int(payload["user"])
        self._mutes.pop(user_id, None)
        self._changes[user_id] = self._changes.get(user_id, 0) + 1
        if len(self._changes) >= MUTES_CACHED:
            self._changes.clear()
            self._mutes.clear()

    def _member_removed(self, payload: SignalPayload) -> None:
        room, user_id = payload["room"], int(payload["user"])
        self._rooms.forget_member(int(payload["room_id"]), user_id)
        for conn in self._connections.all():
            if conn.user.id == user_id:
                conn.leave_room(room, "removed")

    def _room_changed(self, payload: SignalPayload) -> None:
        room = payload["room"]
        self._rooms.forget_room(room)
        if payload.get("gone"):
            for conn in self._connections.all():
                conn.leave_room(room, "deleted")
