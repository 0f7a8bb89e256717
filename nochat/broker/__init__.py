"""The Broker protocol: how an encoded room event reaches every process's hub."""

from __future__ import annotations

from typing import Protocol


class Broker(Protocol):
    def publish(
        self, room: str, encoded: str, seq: int | None = None, first: int | None = None
    ) -> None:
        """Deliver an encoded event to the room's subscribers on every node. Never awaits.

        `seq` is the (last) seq the item carries and `first` the first, when the item is
        a Chunk of several events (None: just `seq`).
        """
        ...
