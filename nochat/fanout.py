"""After a commit: each room's new events, encoded once, handed to the broker."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import events, protocol
from .broker import Broker
from .store import Event
from .subscriber import pack


class CommitFanout:
    def __init__(self, broker: Broker, on_event: Callable[[Event], None]) -> None:
        self._broker = broker
        #: Sees every committed event first (FileService.on_event: attachments' changes).
        self._on_event = on_event

    def __call__(self, batch: Sequence[Event]) -> None:
        """Store writer → broker: each room's share of one commit goes out as one item.

        Every event (a message, edit, delete or reaction) is encoded exactly once. A
        commit's events for one room travel as
        one `Chunk` carrying the highest seq, so a burst costs each subscriber one outbox
        slot, and a healthy client is never evicted for the size of a group commit. A
        commit is atomic, so a reader's snapshot never ends inside one: no subscriber can
        hold part of a chunk already.
        """
        rooms: dict[str, list[tuple[str, int]]] = {}
        on_event = self._on_event
        for e in batch:
            rooms.setdefault(e.room, []).append((protocol.encode(events.log_event(e)), e.seq))
            on_event(e)
        publish = self._broker.publish
        for room, encoded in rooms.items():
            first = encoded[0][1]  # a commit's events of one room have consecutive seqs
            for item, last_seq in pack(encoded):
                publish(room, item, last_seq, first)
                first = last_seq + 1
