"""In-process fan-out: rooms → subscribers' sockets and bounded outboxes. Never awaits.

Policy (gorilla's hub, made explicit): an event is encoded once by the publisher and the
same string goes to every subscriber of its room. A subscriber that is not keeping up
(its bounded outbox full, or over its byte budget: subscriber.py) is evicted (close
4008) on the spot, so a broadcast never blocks. Eviction loses nothing: history is
durable and the client resumes with `join since`.

How an event travels: `publish` appends it to its room's `RoomStream`, once, whatever
the number of subscribers; the hub's flusher task then visits each subscriber with
something new, hands it what it has not had of its rooms' streams (`RoomCursor.pos`, the
seq checks of `Subscriber.wants`), and writes it all as one frame with one `os.write`
(through a transport `FrameSink`); subscribers that got the same events share the frame,
built once. Only what the kernel will not take goes through the outbox and the
connection's write pump. Why not hand every subscriber its copy at publish: at 1,000
subscribers that loop over cold objects cost ~1.4 µs per subscriber per event (issue
11's latency trace, 14 % of the server's core at 100 msg/s); handed while the flusher
writes to that subscriber anyway, it costs a fraction, once per round instead of once
per event. Subscribers without a direct sink (TLS, ASGI sends) are still handed each
event at publish: their write pump batches on its own. A reply to one connection
(`send_to`) first hands it what its rooms published before, so its events stay in order.

A round is written in slices of at most ROUND_SLICE_S, with a scheduling point between
them: a round of 1,000 sockets takes ~10 ms, and unsliced it held the event loop that
long, so a send could not be read, committed or published until it ended, and then
waited for the linger and the whole next round. Between slices, what is published joins
the frames of the subscribers this round has not reached yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from math import inf
from time import perf_counter

import trio
import trio.lowlevel

from .errors import CloseCode
from .room_stream import RoomStream
from .subscriber import CHUNK_MAX_CHARS as CHUNK_MAX_CHARS  # re-exported: callers
from .subscriber import RoomCursor as RoomCursor
from .subscriber import SeqGap
from .subscriber import Subscriber as Subscriber

log = logging.getLogger(__name__)


#: A subscriber with this many replies waiting is written to at once, not at the flush.
FLUSH_EVERY_EVENTS = 64
#: When the flusher's last round ended less than BUSY_WITHIN_S ago (busy), it lingers
#: as long as that round took, between FLUSH_LINGER_S and FLUSH_LINGER_MAX_S, so what is
#: published meanwhile shares one frame per subscriber; when things are quiet it writes
#: at once (latency first). The linger is paid in pauses between the round's slices
#: (PAUSE_MIN_S), so a busy round's writes spread over it. Why as long as the last
#: round: a round is a write syscall per subscriber (~14 ms for 1,000 sockets, where the
#: server's CPU goes: issue 11's profiles), so under load the writes take at most about
#: half the core, and each frame carries what arrived during a round and a linger
#: instead of one or two events. The cap bounds what it adds to a message's latency:
#: at 1,000 clients, 12 ms took 2-3 points less of the core than 10 ms, with the same
#: p99 within the noise (docs/BENCHMARKS.md, Findings).
FLUSH_LINGER_S = 0.001
FLUSH_LINGER_MAX_S = 0.012
BUSY_WITHIN_S = 0.005
#: The longest the flusher writes before it lets other tasks run (reads, commits,
#: publishes), within a round; it looks at the clock every SLICE_CHECK_EVERY sockets.
ROUND_SLICE_S = 0.002
SLICE_CHECK_EVERY = 8
#: The shortest pause the flusher takes within a round (see `Hub._round`).
PAUSE_MIN_S = 0.004


class Hub:
    """Rooms and their subscribers within this process."""

    def __init__(self) -> None:
        self._rooms: dict[str, RoomStream] = {}
        self._all: dict[Subscriber, None] = {}
        self.published = 0
        self.delivered = 0
        self.direct_writes = 0
        self.evictions = 0
        #: Subscribers with replies waiting for the flusher.
        self._dirty: dict[Subscriber, None] = {}
        #: Rooms with entries that some subscriber has not been handed yet.
        self._fresh: dict[RoomStream, None] = {}
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
            self._leave(room, sub)
        self._all.pop(sub, None)
        self._dirty.pop(sub, None)
        sub.direct = None  # never write to a socket whose connection has ended
        sub.pending = []
        sub.pending_chars = 0

    def subscribe(self, room: str, sub: Subscriber, cursor: RoomCursor) -> None:
        stream = self._rooms.get(room)
        if stream is None:
            stream = self._rooms[room] = RoomStream(room)
            if self.room_opened is not None:
                self.room_opened(room)
        cursor.pos = stream.end  # what was published before is not for this subscriber
        sub.rooms[room] = cursor
        stream.subs[sub] = None
        if sub.direct is None:
            stream.now[sub] = None

    def unsubscribe(self, room: str, sub: Subscriber) -> None:
        """Out of `room`; what it published before is handed over first, as it would
        have been at publish."""
        cursor, stream = sub.rooms.get(room), self._rooms.get(room)
        if cursor is not None and stream is not None and cursor.pos < stream.end:
            self._hand_each(stream, (sub,), mark=True)
        self._leave(room, sub)

    def _leave(self, room: str, sub: Subscriber) -> None:
        sub.rooms.pop(room, None)
        stream = self._rooms.get(room)
        if stream is not None:
            stream.subs.pop(sub, None)
            stream.now.pop(sub, None)
            if not stream.subs:
                del self._rooms[room]
                self._fresh.pop(stream, None)
                if self.room_closed is not None:
                    self.room_closed(room)

    def publish(
        self, room: str, encoded: str, seq: int | None = None, first: int | None = None
    ) -> None:
        """Queue one encoded event (or Chunk of events first..seq) for every subscriber of
        `room`, once. Synchronous by design: subscribers without a direct sink get it now,
        the others from the flusher (or just before a reply to them)."""
        stream = self._rooms.get(room)
        if stream is None:
            return
        self.published += 1
        stream.append(encoded, seq, first)
        if stream.now:
            self._hand_each(stream, list(stream.now))
        if len(stream.now) == len(stream.subs):  # all had it now (or none is left)
            stream.drop_before(stream.end)
            return
        self._fresh[stream] = None
        if self._round_since is None:
            self._round_since = perf_counter()
        self._wake.set()

    def send_to(self, sub: Subscriber, encoded: str) -> None:
        """One of a connection's own replies, after what its rooms published before:
        pending for the flusher when it may go direct, else the outbox. Raises
        trio.WouldBlock when the outbox is full."""
        try:
            self._settle(sub)
        except SeqGap:
            self._gapped(sub)
            return
        if sub.direct is None or sub.busy:
            sub.enqueue(encoded)
            return
        sub.pending.append(encoded)
        sub.pending_chars += len(encoded)
        if len(sub.pending) >= FLUSH_EVERY_EVENTS or sub.pending_chars >= CHUNK_MAX_CHARS:
            self.direct_writes += sub.flush()
        else:
            self._mark(sub)

    def _mark(self, sub: Subscriber) -> None:
        """`sub` has events pending: the flusher writes them at its next round."""
        if self._round_since is None:
            self._round_since = perf_counter()
        self._dirty[sub] = None
        self._wake.set()

    def _hand(self, sub: Subscriber, cursor: RoomCursor, stream: RoomStream) -> bool:
        """Hand `sub` what `stream` has for it (`RoomStream.take`); True if that left
        events pending for the flusher. Raises trio.WouldBlock (outbox full) and SeqGap
        (an event would skip seqs: the broker's Sequencer prevents it)."""
        out = stream.take(cursor)
        if not out:
            return False
        self.delivered += len(out)
        if sub.direct is None or sub.busy:
            for encoded in out:
                sub.enqueue(encoded)
            return False
        if sub.pending:
            sub.pending += out
        else:
            sub.pending = out  # `take` made it: no second list
        sub.pending_chars += sum(map(len, out))
        return True

    def _settle(self, sub: Subscriber) -> bool:
        """Hand `sub` everything new in its rooms (raises like `_hand`); True if events
        are pending for it. Looks up whichever are fewer: its rooms or the rooms with
        something new."""
        fresh = self._fresh
        if not fresh:
            return False
        rooms = sub.rooms
        pending = False
        if len(rooms) <= len(fresh):
            streams = self._rooms
            for name, cursor in rooms.items():
                stream = streams[name]
                if cursor.pos < stream.base + len(stream.texts):
                    try:  # noqa: SIM105 - suppress() is an object per call, here per socket
                        pending = self._hand(sub, cursor, stream) or pending
                    except (trio.ClosedResourceError, trio.BrokenResourceError):
                        pass  # closing: its connection unsubscribes it on the way out
        else:
            for stream in list(fresh):
                found = rooms.get(stream.name)
                if found is not None and found.pos < stream.end:
                    try:  # noqa: SIM105
                        pending = self._hand(sub, found, stream) or pending
                    except (trio.ClosedResourceError, trio.BrokenResourceError):
                        pass
        return pending

    def _hand_each(
        self, stream: RoomStream, subs: Iterable[Subscriber], *, mark: bool = False
    ) -> None:
        """`_hand` to each of `subs` now, evicting those that cannot keep up; `mark`:
        what is left pending goes at the flusher's next round."""
        slow: list[Subscriber] = []
        gapped: list[Subscriber] = []
        for sub in subs:
            cursor = sub.rooms.get(stream.name)
            if cursor is None:
                continue
            try:
                if self._hand(sub, cursor, stream) and mark:
                    self._mark(sub)
            except trio.WouldBlock:
                slow.append(sub)
            except SeqGap:
                gapped.append(sub)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass  # already closing; its connection unsubscribes it on the way out
        self._drop(slow, gapped)

    def _drop(self, slow: list[Subscriber], gapped: list[Subscriber]) -> None:
        for sub in slow:
            self.evict(sub)
        for sub in gapped:
            self._gapped(sub)

    def _gapped(self, sub: Subscriber) -> None:
        # Never skip a seq: the client resumes from the store (4008) with nothing lost.
        self.gaps += 1
        log.warning("closing %s: an event would skip seqs in a room", sub.user)
        self.evict(sub)

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
            # Let this scheduling round finish publishing, then go.
            await trio.lowlevel.checkpoint()
            self._wake = trio.Event()
            last_round_s = await self._round(linger, last_round_s)
            last_end = trio.current_time()

    async def _round(self, linger: float = 0.0, expected_s: float = 0.0) -> float:
        """Visit every subscriber with something new: hand it its rooms' new events and
        write them, ROUND_SLICE_S at a time, letting other tasks run between slices;
        returns the time spent writing (not the time others ran in between)."""
        streams = list(self._fresh)
        ends = [stream.end for stream in streams]
        visit, self._dirty = self._dirty, {}
        for stream in streams:
            visit.update(stream.subs)
        subs = list(visit)
        since, self._round_since = self._round_since, None
        clock = trio.lowlevel.current_clock()
        done, writing_s, owed = 0, 0.0, 0.0
        while True:
            started = clock.current_time()
            done = self._write_slice(subs, done, clock, started + ROUND_SLICE_S)
            took = clock.current_time() - started
            writing_s += took
            # Busy: the linger is paid in parts, in proportion to what each slice wrote,
            # so the round's writes spread out and what is published meanwhile shares
            # frames; a part at least PAUSE_MIN_S (a sleep costs ~0.1 ms of CPU).
            owed += linger * took / max(expected_s, took)
            last = done >= len(subs)
            if owed >= PAUSE_MIN_S or (last and owed):
                await trio.sleep(min(owed, linger))
                owed = 0.0
            elif not last:
                # Published meanwhile: handed to the subscribers not visited yet (they
                # get it in this round), and at the next round to those visited.
                await trio.lowlevel.checkpoint()
            if last:
                break
        for stream, end in zip(streams, ends, strict=True):
            stream.drop_before(end)  # every subscriber of the room was visited since
            if not stream.texts:
                self._fresh.pop(stream, None)
        if since is not None and subs:
            self.observe_delivery(perf_counter() - since)
        return writing_s

    def _write_slice(
        self, subs: list[Subscriber], start: int, clock: trio.abc.Clock, until: float
    ) -> int:
        """Hand and flush subs[start:] until the clock passes `until`; returns where it
        stopped.

        Subscribers that got the same events share one frame. The cache lives for one
        slice only: it is keyed by the events' ids, which stay unique only while no new
        event can be made (no other task runs within a slice)."""
        slow: list[Subscriber] = []
        gapped: list[Subscriber] = []
        frames: dict[tuple[int, ...], bytes] = {}
        written = 0
        settle = self._settle
        i, end = start, len(subs)
        while i < end:
            sub = subs[i]
            i += 1
            try:
                settle(sub)
                written += sub.flush(frames)
            except trio.WouldBlock:
                slow.append(sub)
            except SeqGap:
                gapped.append(sub)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass
            if not i % SLICE_CHECK_EVERY and clock.current_time() >= until:
                break
        self.direct_writes += written
        self._drop(slow, gapped)
        return i

    def evict(self, sub: Subscriber) -> None:
        """Drop a subscriber whose outbox overflowed: it leaves every room now, closes 4008."""
        self.evictions += 1
        log.info("evicting slow consumer %s", sub.user)
        for room in list(sub.rooms):
            self._leave(room, sub)
        sub.close(CloseCode.SLOW_CONSUMER)

    def close_all(self, code: CloseCode) -> None:
        """Ask every connection to close (shutdown: 1012)."""
        for sub in list(self._all):
            sub.close(code)

    def connection_count(self) -> int:
        return len(self._all)

    def subscribers(self, room: str) -> int:
        stream = self._rooms.get(room)
        return 0 if stream is None else len(stream.subs)

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
