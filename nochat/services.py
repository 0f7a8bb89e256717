"""The app's services in one typed object, and the room rules every path shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from . import protocol
from .auth import Authenticator
from .broker import Broker
from .errors import CloseCode, NotFound
from .hub import Hub, pack
from .metrics import Counters
from .presence import Presence
from .settings import Settings
from .store import Message, Room, User
from .store.sqlite import SQLiteStore


@dataclass(eq=False)
class Services:
    settings: Settings
    store: SQLiteStore
    hub: Hub
    broker: Broker
    presence: Presence
    auth: Authenticator
    counters: Counters = field(default_factory=Counters)
    shutting_down: bool = False
    #: Set when the last connection has gone during shutdown.
    drained: trio.Event = field(default_factory=trio.Event)

    def on_commit(self, batch: Sequence[Message]) -> None:
        """Store writer → broker: each room's share of one commit goes out as one item.

        Every message is encoded exactly once. A commit's messages for one room travel as
        one `Chunk` carrying the highest seq, so a burst costs each subscriber one outbox
        slot, and a healthy client is never evicted for the size of a group commit. A
        commit is atomic, so a reader's snapshot never ends inside one: no subscriber can
        hold part of a chunk already.
        """
        rooms: dict[str, list[tuple[str, int]]] = {}
        for m in batch:
            event = protocol.message_event(m.room, m.id, m.seq, m.user, m.text, m.ts, m.client_id)
            rooms.setdefault(m.room, []).append((protocol.encode(event), m.seq))
        publish = self.broker.publish
        for room, events in rooms.items():
            for item, last_seq in pack(events):
                publish(room, item, last_seq)

    async def visible_room(self, user: User, name: str) -> Room:
        """The room if `user` may read and write it; NotFound otherwise (names never leak)."""
        room = await self.store.room(name) if protocol.valid_room(name) else None
        if room is None or (room.private and not await self.store.is_member(room, user)):
            raise NotFound(f"no room {name!r}")
        return room

    def begin_shutdown(self) -> None:
        """Refuse new work and ask every connection to close with 1012."""
        self.shutting_down = True
        self.hub.close_all(CloseCode.RESTART)
        if self.hub.connection_count() == 0:
            self.drained.set()

    def connection_closed(self) -> None:
        if self.shutting_down and self.hub.connection_count() == 0:
            self.drained.set()
