"""What the hub and a connection write prepared frames through (transport-neutral)."""

from __future__ import annotations

from typing import Protocol


class FrameSink(Protocol):
    """A connection's socket, for complete prepared WebSocket frames.

    The remainder rule: when `send_nowait` writes only part of a frame, the sink keeps the
    rest and writes it before anything else; the caller queues `frame[written:]` for the
    connection's write pump, which hands that item to `send_queued` (it stands for the
    rest, written once, whoever writes first). Nothing new starts while it is owed.
    """

    def send_nowait(self, data: bytes) -> int:
        """Write what the socket takes now: the byte count (0: nothing could go now).
        Raises OSError when the peer is gone."""
        ...

    async def send_all(self, data: bytes) -> None:
        """Write all of `data` (after any rest owed), waiting for the socket (not
        cancellable mid-frame). Raises OSError when the connection is closing or gone."""
        ...

    async def send_queued(self, data: bytes) -> None:
        """Write a bytes item of the write pump's queue: the rest of a frame `send_nowait`
        started (written from the sink's copy, once), or a whole frame. Raises OSError
        when the connection is closing or gone."""
        ...
