"""The direct writer: every write to one connection's TCP socket, whole frames in order.

Part of the transport adapter (Hypercorn 0.18.0 internals, pinned). `attach` reaches the
TCP stream under Hypercorn's WebSocket stream (`WSStream.send.__self__` is the H11
protocol, whose `send.__self__` is the TCP server with its `send_lock` and `stream`);
`socket_of` keeps one `DirectSocket` per TCP server, so the hooks on Hypercorn's own
writes (connection_hooks.py) and the hub share it. Both return None when the internals
do not look as expected (TLS, HTTP/2): the connection then uses ASGI sends.
"""

from __future__ import annotations

import os
from typing import Any

import trio

#: How long a server that has sent its close frame and EOF goes on reading (and dropping)
#: what the client still sends, waiting for the client to close (RFC 6455 §7.1.1).
#: Closing with unread input makes the kernel send RST, and the client may then lose
#: the close frame (it sees 1006); the wait is the bound on a client that never closes.
CLOSE_LINGER_S = 2.0
#: The linger lasts while the client goes on sending (it may be busy writing a backlog
#: before it reads our close frame), up to this long in all.
CLOSE_LINGER_MAX_S = 10.0
#: Bytes one read takes while lingering (they are thrown away).
_LINGER_READ_BYTES = 65536
#: Where a Hypercorn TCPServer keeps its DirectSocket.
_TCP_SERVER_KEY = "_nochat_direct"
#: `DirectSocket.handover` (takeover.py): Hypercorn reads the socket (NONE); the app may
#: take it over and Hypercorn's reader waits for its decision before reading on
#: (OFFERED); the reader is to stop (RELEASING); it has stopped without ending the
#: connection (RELEASED); NoChat owns the socket (TAKEN).
NONE, OFFERED, RELEASING, RELEASED, TAKEN = 0, 1, 2, 3, 4


class DirectSocket:
    """Every write to one connection's TCP socket, in order and a whole frame at a time
    (a `FrameSink`).

    The hub writes prepared frames without waiting (`send_nowait`); the write pump
    (`send_all`, `send_queued`), the frame reader's close frames (`send_close`) and
    Hypercorn's own writes (`send_raw`, `finish`: the connection hooks route them here)
    wait their turn under Hypercorn's send lock. A frame the kernel took only part of is
    *started*: its rest stays here and whoever writes next writes it first, so nothing
    ever lands inside a frame, and the hub starts no new frame until the write pump has
    taken the rest's place in its queue.
    """

    __slots__ = (
        "_closed",
        "_finished",
        "_lock",
        "_rest",
        "_rest_queued",
        "_routed",
        "_shut",
        "_socket",
        "_stream",
        "decided",
        "handover",
        "heard",
        "reader",
        "reader_done",
        "reading",
    )

    def __init__(self, lock: trio.Lock, stream: trio.SocketStream) -> None:
        self._lock = lock
        self._stream = stream
        self._socket = stream.socket
        self._shut = False  # no more application frames
        self._closed = False  # a close frame has gone out: no more frames at all
        self._finished = False  # EOF sent
        self._routed = False  # Hypercorn's writes come here (`route_writes`)
        #: The unwritten rest of a frame `send_nowait` started.
        self._rest = b""
        #: Whether the write pump's queue holds the placeholder for `_rest` (the bytes
        #: the hub queued when `send_nowait` wrote part of a frame).
        self._rest_queued = False
        #: Hypercorn's reader task for this socket, and set once it has stopped reading;
        #: both None once NoChat reads the socket itself (takeover.py).
        self.reader: trio.lowlevel.Task | None = None
        self.reader_done: trio.Event | None = trio.Event()
        #: Where handing the socket over to NoChat stands (NONE … TAKEN), and, while it is
        #: OFFERED, set when the app has decided.
        self.handover = NONE
        self.decided: trio.Event | None = None
        #: When the reader last got bytes from the client (trio time).
        self.heard = 0.0
        #: NoChat's FrameReader cuts this connection's client frames (not wsproto).
        self.reading = False

    def offer(self) -> None:
        """Hypercorn's reader reads no more until `decide` (the app may take the socket)."""
        self.handover, self.decided = OFFERED, trio.Event()

    def decide(self, take: bool) -> None:
        """The app's decision: Hypercorn's reader stops (RELEASING) or reads on (NONE)."""
        if self.handover == OFFERED:
            self.handover = RELEASING if take else NONE
        if self.decided is not None:
            self.decided.set()
            self.decided = None

    def rebind(self, stream: trio.SocketStream) -> None:
        """Write to `stream` from now on (the same connection, taken over: takeover.py);
        nobody reads for Hypercorn any more."""
        self._stream = stream
        self._socket = stream.socket
        self.reader = self.reader_done = None
        self.handover = TAKEN

    def route_writes(self) -> None:
        """From now on Hypercorn's writes to this socket go through `send_raw`/`finish`."""
        self._routed = True

    @property
    def routes_writes(self) -> bool:
        return self._routed

    @property
    def stream(self) -> trio.SocketStream:
        return self._stream

    def shut(self) -> None:
        """No more application frames: a close frame is going out (they would follow it)."""
        self._shut = True

    def send_nowait(self, data: bytes) -> int:
        """Write what the kernel takes now: the byte count, 0 if nothing could go now.

        When only part of `data` went, the rest is kept here and written before anything
        else; the caller queues `data[written:]` for the write pump, whose `send_queued`
        stands for that rest. Raises OSError when the peer is gone.
        """
        # Ask the socket for its descriptor every time: once Hypercorn has closed it, the
        # number may already belong to a newer connection (fileno() is -1 then).
        fd = self._socket.fileno()
        if fd < 0 or self._shut:
            raise BrokenPipeError("the connection is closed")
        if self._rest_queued:
            return 0  # a started frame's rest is queued: everything goes behind it
        # Nothing can run between this check and the write (no await): holding the lock
        # for the write would only cost acquire/release per frame (7 % of the server's
        # samples at 1,000 subscribers, issue 11's profile). Trio hands a released lock
        # straight to its next waiter, so locked() is true while anyone waits for it.
        if self._lock.locked():
            return 0
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            return 0
        if written < len(data):
            self._rest, self._rest_queued = data[written:], True
        return written

    async def send_all(self, data: bytes) -> None:
        """Write all of `data`, waiting for the socket; shielded like Hypercorn's writes.

        Raises OSError when the connection is closing or gone.
        """
        async with self._lock:
            if self._shut:
                raise BrokenPipeError("the connection is closing")
            await self._write_or_raise(data)

    async def send_queued(self, data: bytes) -> None:
        """Write a bytes item of the write pump's queue: either what `send_nowait` left of a
        frame (written from here; some writer may have written it already) or a whole
        frame it could not start."""
        async with self._lock:
            if self._shut:
                raise BrokenPipeError("the connection is closing")
            if self._rest_queued:
                self._rest_queued = False
                data = b""
            await self._write_or_raise(data)

    async def send_raw(self, data: bytes) -> None:
        """Hypercorn's own writes (HTTP, pongs, close frames), after the rest of a started
        frame; nothing goes after a close frame sent with `send_close`. Raises trio's
        BrokenResourceError or ClosedResourceError, as Hypercorn expects."""
        async with self._lock:
            if not self._closed:
                await self._write(data)

    async def send_close(self, frame: bytes) -> None:
        """The close frame: the last frame this socket sends (raises like `send_raw`)."""
        self._shut = True
        async with self._lock:
            if not self._closed:
                self._closed = True
                await self._write(frame)

    async def finish(self) -> None:
        """End the connection as RFC 6455 §7.1.1 has it: EOF after every frame (under the
        lock, so no write can collide with it), then read and drop what the client still
        sends until it closes or CLOSE_LINGER_S pass, then close the socket."""
        if self._finished:
            return
        self._finished = self._shut = True
        try:
            async with self._lock:  # behind a close frame that is waiting for the lock
                self._closed = True
                with trio.CancelScope(shield=True):
                    await self._stream.send_all(self._rest)
                    self._rest = b""
                    await self._stream.send_eof()
            await self._linger()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the peer or Hypercorn has closed it already
        finally:
            with trio.CancelScope(shield=True):
                await self._stream.aclose()

    async def _linger(self) -> None:
        """Until the client closes, it has been quiet for CLOSE_LINGER_S, or
        CLOSE_LINGER_MAX_S have passed."""
        now = trio.current_time()
        self.heard, end = now, now + CLOSE_LINGER_MAX_S
        done = self.reader_done
        reading_here = done is None or trio.lowlevel.current_task() is self.reader
        while (now := trio.current_time()) < min(end, self.heard + CLOSE_LINGER_S):
            with trio.move_on_at(min(end, self.heard + CLOSE_LINGER_S)):
                if not reading_here:
                    assert done is not None
                    await done.wait()  # Hypercorn's reader notes `heard`
                    return
                if not await self._stream.receive_some(_LINGER_READ_BYTES):
                    return
                self.heard = trio.current_time()

    async def _write_or_raise(self, data: bytes) -> None:
        try:
            await self._write(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise BrokenPipeError("the connection is gone") from exc

    async def _write(self, data: bytes) -> None:
        rest, self._rest = self._rest, b""
        with trio.CancelScope(shield=True):
            if rest:
                await self._stream.send_all(rest)
            if data:
                await self._stream.send_all(data)


def socket_of(tcp_server: Any) -> DirectSocket | None:
    """The DirectSocket of a Hypercorn TCPServer (made on first use), None for TLS."""
    direct = getattr(tcp_server, _TCP_SERVER_KEY, None)
    if isinstance(direct, DirectSocket):
        return direct
    lock, stream = getattr(tcp_server, "send_lock", None), getattr(tcp_server, "stream", None)
    if not isinstance(lock, trio.Lock) or not isinstance(stream, trio.SocketStream):
        return None
    direct = DirectSocket(lock, stream)
    setattr(tcp_server, _TCP_SERVER_KEY, direct)
    return direct


def attach(ws_stream: Any) -> DirectSocket | None:
    """The DirectSocket under a Hypercorn WSStream, or None when it cannot be had safely.

    Hypercorn's own writes to the socket go through it from now on (the connection hooks
    route them), so they queue behind a started frame like every other write.
    """
    try:
        h11_protocol = ws_stream.send.__self__
        tcp_server = h11_protocol.send.__self__
    except AttributeError:
        return None
    direct = socket_of(tcp_server)
    if direct is not None:
        direct.route_writes()
    return direct
