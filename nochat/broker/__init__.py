"""The Broker protocol: how an encoded room event reaches every process's hub."""

from __future__ import annotations

from typing import Protocol


class Broker(Protocol):
    def publish(self, room: str, encoded: str, seq: int | None = None) -> None:
        """Deliver an encoded event to the room's subscribers on every node. Never awaits."""
        ...
