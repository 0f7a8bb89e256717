"""After a commit: each room's new events, encoded once, handed to the broker."""

from __future__ import annotations

from collections.abc import Sequence

from . import protocol
from .broker import Broker
from .hub import pack
from .store import Message


class CommitFanout:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def __call__(self, batch: Sequence[Message]) -> None:
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
        publish = self._broker.publish
        for room, events in rooms.items():
            first = events[0][1]  # a commit's events of one room have consecutive seqs
            for item, last_seq in pack(events):
                publish(room, item, last_seq, first)
                first = last_seq + 1
