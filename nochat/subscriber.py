"""One connection as the hub sees it: its rooms' cursors, its outbox and byte account, and
the events waiting for its next direct frame.

`Subscriber` keeps the account of what a connection holds, in one place: `enqueue` adds,
`sent` (the write pump, once an item has left) takes away, `wait_room` lets a replay wait
for the client to make room. "Full" is counted twice: at most `outbox_size` items, and at
most `budget` characters (`outbox_bytes`) waiting or being written, counting the events
pending for the hub's flusher too. `RoomCursor` is where it stands in one room.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from time import perf_counter

import trio

from .errors import CloseCode
from .protocol import Chunk, batch
from .transport import FrameSink
from .wire import text_frame

#: Most characters in one Chunk or outgoing frame (clients commonly cap frames at 1 MiB).
CHUNK_MAX_CHARS = 128 * 1024
#: A subscriber's default byte budget (Settings.outbox_bytes sets the real one).
OUTBOX_BYTES = 512 * 1024


def pack(events: Sequence[tuple[str, int]]) -> Iterator[tuple[str, int]]:
    """Pack (encoded, seq) pairs, in seq order, into outbox items of at most CHUNK_MAX_CHARS.

    Yields each item with the highest seq it carries; one event stays a plain string.
    """
    parts: list[str] = []
    size = last = 0
    for encoded, seq in events:
        if parts and size + len(encoded) > CHUNK_MAX_CHARS:
            yield (Chunk(",".join(parts)) if len(parts) > 1 else parts[0]), last
            parts, size = [], 0
        parts.append(encoded)
        size += len(encoded)
        last = seq
    if parts:
        yield (Chunk(",".join(parts)) if len(parts) > 1 else parts[0]), last


def _frame(events: list[str], frames: dict[tuple[int, ...], bytes] | None) -> bytes:
    """The frame carrying `events`, from `frames` (keyed by the events' identities) when
    another subscriber got the same ones."""
    if frames is None:
        return text_frame(batch(events))
    key = tuple(map(id, events))
    frame = frames.get(key)
    if frame is None:
        frame = frames[key] = text_frame(batch(events))
    return frame


def _runs(events: list[str], chars: int) -> Iterator[list[str]]:
    """`events` (of `chars` characters in all) cut into runs of at most CHUNK_MAX_CHARS
    (one event at least each)."""
    run: list[str] = []
    size = 0
    for event in events:
        if run and size + len(event) > CHUNK_MAX_CHARS:
            yield run
            run, size = [], 0
        run.append(event)
        size += len(event)
    if run:
        yield run


class SeqGap(Exception):
    """An event that does not start right after what a subscriber has (never skip one)."""


@dataclass(slots=True)
class RoomCursor:
    """One subscriber's position in one room.

    While `live` is false the subscriber is catching up from the store and live messages
    are only noted (`seen`); once caught up, messages at or below `seq` are dropped so a
    message read from the store and then published is delivered once.

    Events without a seq (presence, typing) are state, not history: they go out as soon
    as `joined` has (`announced`), replay or not. Holding them back until the replay
    ends would lose them: a user who came online while the room was catching up would
    never be shown online.
    """

    seq: int = 0
    live: bool = False
    seen: int = 0
    announced: bool = False
    #: How far into the room's stream of published events (the hub's `RoomStream`) this
    #: subscriber has been handed (set by the hub when it subscribes).
    pos: int = 0


@dataclass(eq=False, slots=True)
class Subscriber:
    """One connection as the hub sees it: who, where, and the send end of its outbox."""

    user: str
    outbox: trio.MemorySendChannel[str | bytes]
    rooms: dict[str, RoomCursor] = field(default_factory=dict)
    #: The fast path to this connection's socket, once accepted (None: write pump only).
    direct: FrameSink | None = None
    busy: bool = False
    #: The receive end of the outbox, so closing can drop what is still queued.
    inbox: trio.MemoryReceiveChannel[str | bytes] | None = None
    #: Events the hub writes at its next flush (one frame, one syscall for all of them).
    pending: list[str] = field(default_factory=list)
    pending_chars: int = 0
    close_code: CloseCode | None = None
    #: Most characters this subscriber may have queued, pending or being written.
    budget: int = OUTBOX_BYTES
    #: Characters in the outbox or being written by the write pump (not `pending`).
    queued_chars: int = 0
    #: When the outbox last went from empty to holding something (delivery latency;
    #: `time.perf_counter`, real time even under a test's fake Trio clock).
    queued_since: float = 0.0
    #: Set when `_room_need` more characters fit the budget (or the subscriber closed).
    _room: trio.Event | None = None
    _room_need: int = 0
    _room_limit: int | None = None
    #: Called when the outbox gets an item or closes: the connection's write pump runs
    #: only while it has something to do.
    wake: Callable[[], None] | None = None

    def used(self) -> int:
        """Characters this subscriber holds now: queued, being written, pending."""
        return self.queued_chars + self.pending_chars

    def enqueue(self, item: str | bytes) -> None:
        """Queue for the write pump (raises trio.WouldBlock when full). While anything is
        queued or being sent, the subscriber is `busy` and gets no direct writes, so
        frames keep their order; frames waiting for the hub's flush go ahead of `item`.
        Over the byte budget it raises trio.WouldBlock too, unless nothing is queued (one
        item always fits, or an event bigger than the budget could never go)."""
        if not self.has_room(len(item)):
            raise trio.WouldBlock
        if not self.queued_chars:
            self.queued_since = perf_counter()
        self.hold()
        self.outbox.send_nowait(item)
        self.queued_chars += len(item)
        if self.wake is not None:
            self.wake()

    def sent(self, chars: int) -> None:
        """The write pump has written (or dropped) `chars` of what was queued."""
        self.queued_chars = max(0, self.queued_chars - chars)
        room = self._room
        if room is not None and self.has_room(self._room_need, self._room_limit):
            self._room = None
            room.set()

    def has_room(self, chars: int, limit: int | None = None) -> bool:
        """Whether `chars` more fit under `limit` (default: the budget) now; anything fits
        an empty queue."""
        return not self.queued_chars or self.used() + chars <= (limit or self.budget)

    async def wait_room(self, chars: int, limit: int | None = None) -> None:
        """Return once `chars` more fit under `limit` (at once if they do), or the
        subscriber closed. One waiter at a time (the connection's replay); callers bound
        the wait."""
        if self.has_room(chars, limit) or self.close_code is not None:
            return
        self._room_need, self._room_limit = chars, limit
        self._room = trio.Event()
        await self._room.wait()

    def hold(self) -> None:
        """From now on, until the write pump has drained, everything goes through the
        outbox, behind the events still pending (raises trio.WouldBlock when full)."""
        self.busy = True
        if self.pending:
            events, self.pending = self.pending, []
            self.pending_chars = 0
            for event in events:
                self.outbox.send_nowait(event)
                self.queued_chars += len(event)

    def flush(self, frames: dict[tuple[int, ...], bytes] | None = None) -> int:
        """Write the events waiting for this subscriber as one frame in one syscall (a
        backlog over CHUNK_MAX_CHARS as several).

        `frames` caches frames by the identity of their events: subscribers that got the
        same events this round share one frame. Whatever the kernel does not take now
        goes to the write pump (as raw bytes, then the events behind it). Returns how many
        events went out or were queued. Raises trio.WouldBlock when the outbox is full.
        """
        events, self.pending = self.pending, []
        chars, self.pending_chars = self.pending_chars, 0
        direct = self.direct
        if not events or direct is None:
            return 0
        if chars > CHUNK_MAX_CHARS:
            return self._flush_runs(direct, events, chars, frames)
        frame = _frame(events, frames)  # the common case, kept short: once per socket
        try:
            written = direct.send_nowait(frame)
        except OSError:
            self.direct = None  # the peer is gone; its connection ends on its own
            return 0
        if written < len(frame):
            self.enqueue(frame[written:])
        return len(events)

    def _flush_runs(
        self,
        direct: FrameSink,
        events: list[str],
        chars: int,
        frames: dict[tuple[int, ...], bytes] | None,
    ) -> int:
        for run in _runs(events, chars):
            if self.busy:  # an earlier frame went only in part: the rest queue behind it
                for event in run:
                    self.enqueue(event)
                continue
            frame = _frame(run, frames)
            try:
                written = direct.send_nowait(frame)
            except OSError:
                self.direct = None
                return 0
            if written < len(frame):
                self.enqueue(frame[written:])
        return len(events)

    def close(self, code: CloseCode) -> None:
        """Ask the connection to end with `code`; its write pump sees the outbox close."""
        if self.close_code is None:
            self.close_code = code
        self.direct = None
        self.pending = []
        self.pending_chars = 0
        self.outbox.close()
        if self.wake is not None:
            self.wake()  # the write pump sees the outbox closed and ends the connection
        if self.inbox is not None:  # free what it will never send, now, not when it unblocks
            while True:
                try:
                    self.sent(len(self.inbox.receive_nowait()))
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
        if self._room is not None:
            self._room.set()
            self._room = None
