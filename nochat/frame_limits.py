"""One connection's frame limits: any frame, store writes, joins and leaves, typing per
room, and the strikes that close a client that goes on flooding (4029)."""

from __future__ import annotations

from .limits import TokenBucket
from .protocol import ClientFrame, Delete, Edit, Join, Leave, React, Send, Status, Typing
from .settings import Settings


class FrameLimits:
    """The token buckets a connection's client frames take from (settings: `frame_*`,
    `send_*`, `join_*`, `typing_interval_s`, `rate_strikes`)."""

    __slots__ = ("_any", "_joins", "_settings", "_strikes", "_typing", "_writes")

    def __init__(self, settings: Settings, now: float) -> None:
        self._settings = settings
        self._any = TokenBucket(settings.frame_rate_per_s, settings.frame_burst, now)
        self._writes = TokenBucket(settings.send_rate_per_s, settings.send_burst, now)
        self._joins = TokenBucket(settings.join_rate_per_s, settings.join_burst, now)
        #: One bucket per room this connection has typed in (None until it types).
        self._typing: dict[str, TokenBucket] | None = None
        self._strikes = 0

    def any_frame(self, now: float) -> float:
        """Seconds any frame must wait (0.0: go ahead)."""
        return self._any.take(now)

    def of(self, frame: ClientFrame, now: float, *, joined: bool) -> float:
        """Seconds this frame must wait under its type's limit (0.0: go ahead); `joined`:
        the connection is in the frame's room (typing elsewhere is not limited here)."""
        if isinstance(frame, (Send, Edit, Delete, React, Status)):  # each a store write
            return self._writes.take(now)
        if isinstance(frame, (Join, Leave)):
            return self._joins.take(now)
        if isinstance(frame, Typing) and joined:
            typing = self._typing
            if typing is None:
                typing = self._typing = {}
            bucket = typing.get(frame.room)
            if bucket is None:
                # One per interval on average; a burst of 2 forgives network jitter.
                bucket = TokenBucket(1 / self._settings.typing_interval_s, 2, now)
                typing[frame.room] = bucket
            return bucket.take(now)
        return 0.0

    def strike(self) -> bool:
        """Count a rate-limited frame; True once there have been `rate_strikes` in a row."""
        self._strikes += 1
        return self._strikes >= self._settings.rate_strikes

    def forgive(self) -> None:
        """A frame went through: the strikes start again."""
        self._strikes = 0

    def left(self, room: str) -> None:
        if self._typing is not None:
            self._typing.pop(room, None)
