"""LocalBroker: one process, so publishing is handing the event straight to the hub."""

from __future__ import annotations

from ..hub import Hub


class LocalBroker:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def publish(
        self, room: str, encoded: str, seq: int | None = None, first: int | None = None
    ) -> None:
        self.hub.publish(room, encoded, seq, first)
