"""One WebSocket connection: a reader, a writer while there is something to write, and a
heartbeat.

The read pump and the write pump talk only through the connection's bounded outbox (a
trio memory channel) and its `Subscriber`; the heartbeat is `keepalive_due`, called by
the app-wide `Keepalive` task. The read pump runs in the connection's own task (its
nursery's body); the write pump is started in that nursery when the outbox gets an item
(`Subscriber.wake`) and ends once it has drained it. Whoever decides the connection must
end (the hub on overflow, the heartbeat on silence, shutdown, a bug) calls
`Subscriber.close(code)`; that wakes the write pump, which sees the outbox closed and
cancels the nursery. Cleanup runs in `finally` and never awaits unshielded. When the
client goes, `Socket.receive` raises Disconnected, the read pump returns and the body
cancels the nursery.

Outgoing events (replies included) leave through the hub's flusher while the socket is
idle (`Hub.send_to`); the write pump carries only what had to queue: a slow socket's
backlog, a join's replay (replay.py), the tail of a partial write.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any, Protocol

import trio

from . import frames, protocol
from .errors import CLOSE_REASONS, CloseCode, NoChatError
from .frame_limits import FrameLimits
from .hub import CHUNK_MAX_CHARS, Subscriber
from .protocol import Chunk, FrameError, Typing
from .services import Services
from .store import Room, Session, User, now_ms
from .transport import Disconnected, FrameSink
from .wire import text_frame

log = logging.getLogger(__name__)

#: Outbox marker: "the acks collected in Connection._acks go here".
_ACKS = Chunk("acks")
#: What a write raises when the peer has gone (reset, closed, aborted by TCP_USER_TIMEOUT
#: after it stopped reading): the client disconnected, the server did nothing wrong.
PEER_GONE = (
    BrokenPipeError,
    ConnectionResetError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
)
#: How long closing the socket may take at the end before we give up on the peer.
CLOSE_TIMEOUT_S = 2.0


class Socket(Protocol):
    """What a connection needs from a WebSocket (`ws.AsgiSocket`, or a socket NoChat has
    taken over from Hypercorn: `transport.TakenSocket`)."""

    async def receive(self) -> str | bytes:
        """The next frame's payload; raises Disconnected when the client has gone."""
        ...

    async def send(self, data: str) -> None: ...
    async def close(self, code: int, reason: str = "") -> None: ...


class Connection:
    # Slots: one connection per socket, so its attribute dict was ~1 KiB of every idle
    # connection. __weakref__: the app's Keepalive holds connections weakly.
    __slots__ = (
        "__weakref__",
        "_acks",
        "_direct",
        "_ended",
        "_first_by",
        "_gone",
        "_inbox",
        "_next_ping",
        "_nursery",
        "_outbox",
        "_started",
        "_writing",
        "address",
        "conn_id",
        "expires_at",
        "last_heard",
        "limits",
        "rooms",
        "services",
        "session",
        "settings",
        "since_ms",
        "socket",
        "sub",
        "user",
    )

    def __init__(
        self,
        services: Services,
        user: User,
        session: Session,
        socket: Socket,
        direct: FrameSink | None = None,
        address: str = "",
    ) -> None:
        self.services = services
        self.conn_id = services.connections.new_id()
        self.address = address
        self.since_ms = now_ms()
        self.settings = services.settings
        self.user = user
        self.session = session
        self.socket = socket
        self._direct = direct
        self._outbox, self._inbox = trio.open_memory_channel[str | bytes](self.settings.outbox_size)
        self.sub = Subscriber(
            user.name, self._outbox, inbox=self._inbox, budget=self.settings.outbox_bytes
        )
        self.sub.wake = self._wake_writer
        #: The connection's nursery while it runs, and whether its write pump runs.
        self._nursery: trio.Nursery | None = None
        self._writing = False
        self.rooms: dict[str, Room] = {}
        #: Acks completed since the write pump last looked; one outbox slot stands for all.
        self._acks: list[str] = []
        now = trio.current_time()
        self.last_heard = now
        self.expires_at = now
        self.extend(session.expires_at_ms)
        self.limits = FrameLimits(self.settings, now)
        self._next_ping = now
        #: When a client that has sent no frame yet is closed 4002 (the keepalive heap
        #: watches it: a trio deadline per connecting socket cost its heap upkeep).
        self._first_by = math.inf
        self._ended = False
        self._gone = False
        self._started = now

    def extend(self, expires_at_ms: int) -> None:
        """Move this connection's credential deadline (a refreshed session)."""
        self.expires_at = trio.current_time() + (expires_at_ms - now_ms()) / 1000

    async def serve(self, accept: Callable[[], Awaitable[Socket | None]]) -> None:
        """Accept, then run until the client goes, the server closes it, or something breaks."""
        if await self.open(accept):
            await self.run()

    async def open(self, accept: Callable[[], Awaitable[Socket | None]]) -> bool:
        """Register, then accept; `accept` may return the socket to talk through from now
        on (one taken over from Hypercorn). False when the connection ended meanwhile
        (everything `run` would clean up is cleaned up).

        Registration happens before the first await, so the caller's admission check
        (connection caps) and this registration cannot interleave with another handshake.
        """
        self.services.connections.register(self)
        self._started = trio.current_time()
        accepted = False
        try:
            socket = await accept()
            if socket is not None:
                self.socket = socket
            accepted = True
        except Exception:
            log.exception("connection of %s failed", self.user.name)
            self._failed()
        finally:
            if not accepted:
                await self._end()
        return accepted

    async def run(self) -> None:
        """The accepted connection until it ends; then everything it held is let go."""
        services = self.services
        try:
            await services.status.load(self.user)
            self.sub.direct = self._direct  # frames may go straight out only after accept
            now = trio.current_time()
            self._next_ping = now + self.settings.ping_interval_s
            self._first_by = now + self.settings.first_frame_timeout_s  # (read_pump reads next)
            services.keepalive.watch(self, self._keepalive_deadline())
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    if self.sub.queued_chars or self.sub.close_code is not None:
                        self._wake_writer()  # queued before the nursery (or closed meanwhile)
                    await self.read_pump()  # the connection's own task is the reader
                    nursery.cancel_scope.cancel()  # the client went away
                finally:
                    self._nursery = None  # no write pump starts once the reader is done
        except Exception:
            log.exception("connection of %s failed", self.user.name)
            self._failed()
        finally:
            await self._end()

    def _failed(self) -> None:
        """A bug ended the connection (logged by the caller): close it 1011."""
        self.services.counters.closed_internal += 1
        self.sub.close(CloseCode.INTERNAL)

    async def _end(self) -> None:
        services = self.services
        self._ended = True
        log.debug("socket of %s ended", self.user.name)
        self.sub.wake = None  # (a cycle: the connection would wait for the collector)
        self._inbox.close()  # what the hub still sends now fails at once
        services.telemetry.connection_seconds.observe(trio.current_time() - self._started)
        for name in list(self.rooms):
            self.leave(name)
        services.connections.unregister(self)
        services.status.connection_gone(self.user)
        if self.sub.close_code is not None:
            await self._close_socket(self.sub.close_code)
        await services.status.connection_ended(self.user)

    async def _close_socket(self, code: CloseCode) -> None:
        with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
            try:
                await self.socket.close(code, CLOSE_REASONS[code])
            except Exception:  # the peer may be gone already; nothing left to tell it
                log.debug("closing the socket of %s failed", self.user.name, exc_info=True)

    # ---- the reader, the writer, the heartbeat -----------------------------------------

    async def read_pump(self) -> None:
        """Receive and handle frames until the client goes (returns) or the server closes
        the connection (cancelled with the nursery)."""
        try:
            while True:
                data = await self.socket.receive()
                await self._on_frame(data)
        except Disconnected:
            self._peer_left(None)

    async def _on_frame(self, data: str | bytes) -> None:
        now = self.last_heard = trio.current_time()
        self._first_by = math.inf
        self.services.counters.frames_in += 1
        wait = self.limits.any_frame(now)
        if wait:
            self._rate_limited(wait, None)
            return
        if not isinstance(data, str) or not data:
            self.push_error("unsupported_frame", "only non-empty JSON text frames are accepted")
            return
        try:
            frame = protocol.decode_frame(data)
        except FrameError as exc:
            self.push_error(exc.code, exc.message, exc.ref)
            return
        joined = isinstance(frame, Typing) and frame.room in self.rooms
        wait = self.limits.of(frame, now, joined=joined)
        if wait:
            self._rate_limited(wait, frame.ref)
            return
        self.limits.forgive()
        try:
            await frames.handle(self, frame)
        except NoChatError as exc:
            self.push_error(exc.code, exc.message, frame.ref, **exc.details())

    def _rate_limited(self, wait: float, ref: protocol.Ref) -> None:
        self.services.telemetry.rate_limited.labels(limit="ws").inc()
        if self.limits.strike():
            self.services.counters.closed_rate_limited += 1
            self.sub.close(CloseCode.RATE_LIMITED)
            return
        self.push_error("rate_limited", "slow down", ref, retry_after=round(wait, 3))

    def _wake_writer(self) -> None:
        """Start the write pump unless it runs (the outbox got an item, or closed)."""
        nursery = self._nursery
        if not self._writing and nursery is not None:
            self._writing = True
            nursery.start_soon(self.write_pump, nursery.cancel_scope)

    async def write_pump(self, done: trio.CancelScope) -> None:
        """Drain the outbox, then end: what is queued at each turn leaves as one frame. The
        next item queued starts it again (`Subscriber.wake`), so an idle connection has
        no writer task (its coroutine frames, its wait on the outbox and the task were
        ≈ 2.8 KiB of every idle connection: docs/BENCHMARKS.md, "Idle"). An outbox that
        has closed (the connection is to end) or a peer found gone cancels `done`.

        Text items are events (or Chunks of them) batched into a JSON array; a bytes item
        is the unwritten tail of a frame the hub started writing directly, and goes first.
        """
        counters = self.services.counters
        observe = self.services.telemetry.delivery_seconds.observe
        inbox, sub = self._inbox, self.sub
        most = self.settings.batch_max_events
        try:
            while True:
                try:
                    first = inbox.receive_nowait()
                except trio.WouldBlock:
                    return  # drained: nothing waits for a write
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    done.cancel()  # the outbox closed: the connection ends
                    return
                if sub.close_code is not None:
                    done.cancel()
                    return
                # What was taken from the outbox stays on the subscriber's byte account
                # until it has been written (`sub.sent`).
                taken = len(first)
                if isinstance(first, bytes):
                    await self._send_frame(first)
                else:
                    items: list[str] = [self._take_acks() if first is _ACKS else first]
                    size = len(items[0])
                    while len(items) < most and size < CHUNK_MAX_CHARS:
                        try:
                            item = inbox.receive_nowait()
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                        taken += len(item)
                        if isinstance(item, bytes):  # cannot happen while busy; be safe
                            await self._send_text(items)
                            items = []
                            await self._send_frame(item)
                            continue
                        text = self._take_acks() if item is _ACKS else item
                        items.append(text)
                        size += len(text)
                    if items:
                        await self._send_text(items)
                        now = perf_counter()
                        observe(now - sub.queued_since)
                        sub.queued_since = now  # what is left waited at least this long
                    counters.events_out += len(items)
                    del items  # do not keep the last frame alive while idle
                del first
                sub.sent(taken)
                if inbox.statistics().current_buffer_used == 0:
                    sub.busy = False
        except PEER_GONE as exc:
            self._peer_left(exc)
            done.cancel()
        finally:
            self._writing = False

    def _peer_left(self, exc: BaseException | None) -> None:
        """The client went away (a read saw it go, or a write found it gone): count a
        disconnect, once; nothing more is written to its socket."""
        if self._gone:
            return
        self._gone = True
        self.sub.direct = None
        self.services.counters.disconnects += 1
        if exc is not None:
            log.debug("the peer of %s went away mid-write (%s)", self.user.name, type(exc).__name__)

    async def _send_text(self, items: list[str]) -> None:
        payload = protocol.batch(items)
        direct = self.sub.direct
        if direct is not None:
            await direct.send_all(text_frame(payload))
        else:
            await self.socket.send(payload)
        self.services.counters.frames_out += 1

    async def _send_frame(self, frame: bytes) -> None:
        direct = self.sub.direct
        if direct is not None:
            await direct.send_queued(frame)  # the rest of a frame the hub started, or a frame

    def keepalive_due(self, now: float) -> float | None:
        """The heartbeat, called by the app's `Keepalive` when this connection is due:
        ping every ping_interval; close 4002 when the client has been silent for
        pong_timeout, 4001 when its session expires. Returns when to look again, None
        once the connection is closing or gone."""
        if self._ended or self.sub.close_code is not None:
            return None
        if now >= self.expires_at:
            self.sub.close(CloseCode.TOKEN_EXPIRED)
            return None
        if now - self.last_heard >= self.settings.pong_timeout_s or now >= self._first_by:
            self.services.counters.closed_no_pong += 1  # silent, or accepted and then silent
            self.sub.close(CloseCode.NO_PONG)  # (a half-open handshake)
            return None
        if now >= self._next_ping:
            self.push(protocol.PING)
            self._next_ping = now + self.settings.ping_interval_s
        return self._keepalive_deadline()

    def _keepalive_deadline(self) -> float:
        return min(
            self._next_ping,
            self.last_heard + self.settings.pong_timeout_s,
            self.expires_at,
            self._first_by,
        )

    # ---- outbox ------------------------------------------------------------------------

    def push(self, encoded: str) -> None:
        """Send one of this connection's own replies the way the hub sends events (direct
        when idle, else the outbox); a full outbox evicts like the hub."""
        try:
            self.services.hub.send_to(self.sub, encoded)
        except trio.WouldBlock:
            self.services.hub.evict(self.sub)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # closing already

    def push_ack(self, encoded: str) -> None:
        """Queue an ack. A group commit completes many at once: they share one outbox slot
        (or one frame of the flusher's, when the socket is idle)."""
        if self.sub.direct is not None and not self.sub.busy:
            self.push(encoded)
            return
        self._acks.append(encoded)
        if len(self._acks) == 1:
            self.push(_ACKS)

    def _take_acks(self) -> str:
        acks, self._acks = self._acks, []
        return acks[0] if len(acks) == 1 else Chunk(",".join(acks))

    def push_error(self, code: str, message: str, ref: protocol.Ref = None, **extra: Any) -> None:
        self.services.counters.errors_sent += 1
        self.push(protocol.encode(protocol.error_event(code, message, ref, **extra)))

    # ---- rooms joined (frames.py handles the frames) -----------------------------------

    def joined_rooms(self) -> list[str]:
        return list(self.rooms)

    def leave_room(self, room: str, reason: str) -> None:
        """The server takes this connection out of `room` (removed, or the room deleted)."""
        if room in self.rooms:
            self.leave(room)
            self.push(protocol.encode({"type": "left", "room": room, "reason": reason}))

    def leave(self, name: str) -> None:
        """Out of `name`: no more of its events, presence there counted down."""
        self.rooms.pop(name, None)
        self.limits.left(name)
        self.services.hub.unsubscribe(name, self.sub)
        self.services.presence.leave(name, self.user.name)
