"""What the hub and a connection write prepared frames through (transport-neutral)."""

from __future__ import annotations

from typing import Protocol


class FrameSink(Protocol):
    """A connection's socket, for complete prepared WebSocket frames."""

    def send_nowait(self, data: bytes) -> int:
        """Write what the socket takes now: the byte count (0: nothing could go now).
        Raises OSError when the peer is gone."""
        ...

    async def send_all(self, data: bytes) -> None:
        """Write all of `data`, waiting for the socket (not cancellable mid-frame)."""
        ...
