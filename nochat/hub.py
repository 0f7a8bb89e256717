"""In-process fan-out: rooms → subscribers' sockets and bounded outboxes. Never awaits.

Policy (gorilla's hub, made explicit): an event is encoded once by the publisher and the
same string goes into every subscriber's outbox with `send_nowait`. A full outbox means the
client is not keeping up: it is evicted (close 4008) on the spot, so a broadcast never
blocks. "Full" is counted twice: at most `outbox_size` items, and at most `budget`
characters (`outbox_bytes`) waiting or being written, counting the events pending for the
flusher too. `Subscriber` keeps that account, in one place: `enqueue` adds, `sent` (the
write pump, once an item has left) takes away, `wait_room` lets a replay wait for the
client to make room. Eviction loses nothing: history is durable and the client resumes with
`join since`.

The fast path (frames from wire.py, written through a transport `FrameSink`): a
subscriber with nothing queued gets the event appended to its `pending` list, and the
hub's flusher task writes each such subscriber's events as one frame with one `os.write`
per round; subscribers that got the same events share the frame, built once. Only what
the kernel will not take goes through the outbox and the connection's write pump.

A round is written in slices of at most ROUND_SLICE_S, with a scheduling point between
them: a round of 1,000 sockets takes ~10 ms, and unsliced it held the event loop that
long, so a send could not be read, committed or published until it ended, and then
waited for the linger and the whole next round. Between slices, what is published joins
the frames of the subscribers this round has not reached yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from math import inf
from time import perf_counter

import trio
import trio.lowlevel

from .errors import CloseCode
from .protocol import Chunk, batch
from .transport import FrameSink
from .wire import text_frame

log = logging.getLogger(__name__)


#: A subscriber with this many events waiting is written to at once, not at the flush.
FLUSH_EVERY_EVENTS = 64
#: When the flusher's last round ended less than BUSY_WITHIN_S ago (busy), it waits
#: before the next round as long as that round took, between FLUSH_LINGER_S and
#: FLUSH_LINGER_MAX_S, so what is published meanwhile shares one frame per subscriber;
#: when things are quiet it flushes at once (latency first). Why as long as the last
#: round: a round is a write syscall per subscriber (~10 ms for 1,000 sockets, where
#: the server's CPU goes: issue 11's profile), so under load the writes then take at
#: most about half the core, and each frame carries what arrived during a round and a
#: linger instead of one or two events.
FLUSH_LINGER_S = 0.001
FLUSH_LINGER_MAX_S = 0.010
BUSY_WITHIN_S = 0.005
#: The longest the flusher writes before it lets other tasks run (reads, commits,
#: publishes), within a round.
ROUND_SLICE_S = 0.002
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

    def used(self) -> int:
        """Characters this subscriber holds now: queued, being written, pending."""
        return self.queued_chars + self.pending_chars

    def wants(self, room: str, seq: int | None, first: int | None = None) -> bool:
        """Whether this subscriber should get an event of `room` carrying seqs first..seq
        (first None: just seq) now. A live cursor only ever advances by one event: an
        event that would skip some raises SeqGap (the broker's Sequencer prevents it)."""
        cursor = self.rooms.get(room)
        if cursor is None:
            return False
        if seq is not None:
            if not cursor.live:
                cursor.seen = max(cursor.seen, seq)
                return False
            if seq <= cursor.seq:
                return False
            if (seq if first is None else first) != cursor.seq + 1:
                raise SeqGap(room)
            cursor.seq = seq
            return True
        return cursor.live or cursor.announced

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
        """Write the events waiting for this subscriber as one frame in one syscall.

        `frames` caches frames by the identity of their events: subscribers that got the
        same events this round share one frame. Whatever the kernel does not take now
        goes to the write pump as raw bytes. Returns how many events left.
        """
        events, self.pending = self.pending, []
        self.pending_chars = 0
        direct = self.direct
        if not events or direct is None:
            return 0
        key = tuple(map(id, events))
        frame = frames.get(key) if frames is not None else None
        if frame is None:
            frame = text_frame(batch(events))
            if frames is not None:
                frames[key] = frame
        try:
            written = direct.send_nowait(frame)
        except OSError:
            self.direct = None  # the peer is gone; its connection ends on its own
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
        if self.inbox is not None:  # free what it will never send, now, not when it unblocks
            while True:
                try:
                    self.sent(len(self.inbox.receive_nowait()))
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
        if self._room is not None:
            self._room.set()
            self._room = None


class Hub:
    """Rooms and their subscribers within this process."""

    def __init__(self) -> None:
        self._rooms: dict[str, dict[Subscriber, None]] = {}
        self._all: dict[Subscriber, None] = {}
        self.published = 0
        self.delivered = 0
        self.direct_writes = 0
        self.evictions = 0
        self._dirty: dict[Subscriber, None] = {}
        self._wake = trio.Event()
        self.gaps = 0
        #: Told when a room gets its first local subscriber and loses its last (the broker).
        self.room_opened: Callable[[str], None] | None = None
        self.room_closed: Callable[[str], None] | None = None
        #: Told, once per flusher round, how long its oldest event waited since publish.
        self.observe_delivery: Callable[[float], None] = _ignore
        #: When the first event now waiting for the flusher was published (None: none).
        self._round_since: float | None = None

    def connect(self, sub: Subscriber) -> None:
        self._all[sub] = None

    def disconnect(self, sub: Subscriber) -> None:
        for room in list(sub.rooms):
            self.unsubscribe(room, sub)
        self._all.pop(sub, None)
        self._dirty.pop(sub, None)
        sub.direct = None  # never write to a socket whose connection has ended
        sub.pending = []
        sub.pending_chars = 0

    def subscribe(self, room: str, sub: Subscriber, cursor: RoomCursor) -> None:
        sub.rooms[room] = cursor
        subs = self._rooms.get(room)
        if subs is None:
            subs = self._rooms[room] = {}
            if self.room_opened is not None:
                self.room_opened(room)
        subs[sub] = None

    def unsubscribe(self, room: str, sub: Subscriber) -> None:
        sub.rooms.pop(room, None)
        subs = self._rooms.get(room)
        if subs is not None:
            subs.pop(sub, None)
            if not subs:
                del self._rooms[room]
                if self.room_closed is not None:
                    self.room_closed(room)

    def publish(
        self, room: str, encoded: str, seq: int | None = None, first: int | None = None
    ) -> None:
        """Hand one encoded event (or Chunk of events first..seq) to every subscriber of
        `room`. Synchronous by design."""
        subs = self._rooms.get(room)
        if not subs:
            return
        self.published += 1
        slow: list[Subscriber] = []
        gapped: list[Subscriber] = []
        delivered = 0
        for sub in subs:
            try:
                if not sub.wants(room, seq, first):
                    continue
                self.send_to(sub, encoded)
                delivered += 1
            except trio.WouldBlock:
                slow.append(sub)
            except SeqGap:
                gapped.append(sub)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass  # already closing; its connection unsubscribes it on the way out
        self.delivered += delivered
        for sub in slow:
            self.evict(sub)
        for sub in gapped:
            # Never skip a seq: the client resumes from the store (4008) with nothing lost.
            self.gaps += 1
            log.warning("closing %s: an event would skip seqs in a room", sub.user)
            self.evict(sub)

    def send_to(self, sub: Subscriber, encoded: str) -> None:
        """One event for one subscriber: pending for the flusher when it may go direct,
        else the outbox. Raises trio.WouldBlock when the outbox is full."""
        if sub.direct is None or sub.busy:
            sub.enqueue(encoded)
            return
        sub.pending.append(encoded)
        sub.pending_chars += len(encoded)
        if len(sub.pending) >= FLUSH_EVERY_EVENTS or sub.pending_chars >= CHUNK_MAX_CHARS:
            self.direct_writes += sub.flush()
        else:
            if self._round_since is None:
                self._round_since = perf_counter()
            self._dirty[sub] = None
            self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The flusher: each round, one frame and one write per subscriber with events.

        Under load, events published while it lingers (`linger_s`) share that frame, so a
        burst costs each subscriber one syscall and each client one frame to parse.
        """
        task_status.started()
        last_end, last_round_s = -inf, 0.0
        while True:
            await self._wake.wait()
            linger = linger_s(trio.current_time() - last_end, last_round_s)
            if linger:
                # Busy: linger, so what is published meanwhile shares the frame.
                await trio.sleep(linger)
            else:
                # Quiet: only let this scheduling round finish publishing, then go.
                await trio.lowlevel.checkpoint()
            self._wake = trio.Event()
            last_round_s = await self._round()
            last_end = trio.current_time()

    async def _round(self) -> float:
        """Write every subscriber with pending events, ROUND_SLICE_S at a time, letting
        other tasks run between slices; returns the time spent writing (not the time
        others ran in between)."""
        dirty, self._dirty = list(self._dirty), {}
        since, self._round_since = self._round_since, None
        clock = trio.lowlevel.current_clock()
        done, writing_s = 0, 0.0
        while True:
            started = clock.current_time()
            done = self._write_slice(dirty, done, clock, started + ROUND_SLICE_S)
            writing_s += clock.current_time() - started
            if done >= len(dirty):
                break
            # Published meanwhile: pending for the subscribers not written yet (they get
            # it in this round), dirty again for the next round for those written.
            await trio.lowlevel.checkpoint()
        if since is not None and dirty:
            self.observe_delivery(perf_counter() - since)
        return writing_s

    def _write_slice(
        self, dirty: list[Subscriber], start: int, clock: trio.abc.Clock, until: float
    ) -> int:
        """Flush dirty[start:] until the clock passes `until`; returns where it stopped.

        Subscribers that got the same events share one frame. The cache lives for one
        slice only: it is keyed by the events' ids, which stay unique only while no new
        event can be made (no other task runs within a slice)."""
        slow: list[Subscriber] = []
        frames: dict[tuple[int, ...], bytes] = {}
        i, end = start, len(dirty)
        while i < end:
            sub = dirty[i]
            i += 1
            try:
                self.direct_writes += sub.flush(frames)
            except trio.WouldBlock:
                slow.append(sub)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass
            if clock.current_time() >= until:
                break
        for sub in slow:
            self.evict(sub)
        return i

    def evict(self, sub: Subscriber) -> None:
        """Drop a subscriber whose outbox overflowed: it leaves every room now, closes 4008."""
        self.evictions += 1
        log.info("evicting slow consumer %s", sub.user)
        for room in list(sub.rooms):
            self.unsubscribe(room, sub)
        sub.close(CloseCode.SLOW_CONSUMER)

    def close_all(self, code: CloseCode) -> None:
        """Ask every connection to close (shutdown: 1012)."""
        for sub in list(self._all):
            sub.close(code)

    def connection_count(self) -> int:
        return len(self._all)

    def subscribers(self, room: str) -> int:
        return len(self._rooms.get(room, ()))

    def queued_chars(self) -> Iterator[int]:
        """What each connection holds queued, pending or being written (at scrape)."""
        return (sub.used() for sub in self._all)

    def statistics(self) -> HubStatistics:
        queued = [sub.outbox.statistics().current_buffer_used for sub in self._all]
        chars = [sub.used() for sub in self._all]
        return HubStatistics(
            connections=len(self._all),
            rooms=len(self._rooms),
            published=self.published,
            delivered=self.delivered,
            evictions=self.evictions,
            max_queued=max(queued, default=0),
            total_queued=sum(queued),
            max_queued_chars=max(chars, default=0),
            total_queued_chars=sum(chars),
        )


@dataclass(frozen=True, slots=True)
class HubStatistics:
    connections: int
    rooms: int
    published: int
    delivered: int
    evictions: int
    #: The most events waiting in any one outbox (never more than `outbox_size`).
    max_queued: int
    total_queued: int
    #: The most characters any one subscriber holds (never much more than its budget).
    max_queued_chars: int
    total_queued_chars: int


def linger_s(idle_s: float, last_round_s: float) -> float:
    """How long the flusher waits before a round: nothing after BUSY_WITHIN_S idle since
    its last round ended, else as long as that round took, within FLUSH_LINGER_S and
    FLUSH_LINGER_MAX_S."""
    if idle_s >= BUSY_WITHIN_S:
        return 0.0
    return min(FLUSH_LINGER_MAX_S, max(FLUSH_LINGER_S, last_round_s))


def _ignore(seconds: float) -> None:
    """The default delivery observer: nobody watches."""
