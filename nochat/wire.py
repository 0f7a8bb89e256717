"""The fast send path: server WebSocket frames built once, written straight to the socket.

A server→client frame is unmasked, so the complete frame of an event (header + UTF-8
payload) is the same bytes for every subscriber. Going through Quart → Hypercorn →
wsproto → h11 costs ~40 µs of Python per frame; writing prepared bytes costs one
`os.write`. The hub therefore builds each event's frame once and writes it to every idle
subscriber's socket at once, with no task switch; only what the kernel will not take now
goes through the connection's write pump.

`DirectSocket` reaches the TCP stream under Hypercorn's WebSocket stream. Hypercorn has
no public hook for that, so `attach` follows its internals (pinned in pyproject) and
returns None when they do not look as expected, for TLS, HTTP/2, or compression (frames
would have to be deflated): the connection then uses the ordinary path.
"""

from __future__ import annotations

import codecs
import logging
import os
from typing import Any

import trio

log = logging.getLogger(__name__)

_TEXT = 0x81  # FIN + opcode 1 (text)
SCOPE_KEY = "nochat.direct"
#: Where a Hypercorn TCPServer keeps its DirectSocket.
_TCP_SERVER_KEY = "_nochat_direct"


def text_frame(payload: str) -> bytes:
    """One complete, unmasked, unfragmented text frame carrying `payload`."""
    data = payload.encode()
    n = len(data)
    if n < 126:
        return bytes((_TEXT, n)) + data
    if n < 65536:
        return bytes((_TEXT, 126)) + n.to_bytes(2, "big") + data
    return bytes((_TEXT, 127)) + n.to_bytes(8, "big") + data


#: How long a server that has sent its close frame and EOF goes on reading (and dropping)
#: what the client still sends, waiting for the client to close (RFC 6455 §7.1.1).
#: Closing with unread input makes the kernel send RST, and the client may then lose
#: the close frame (it sees 1006); the wait is the bound on a client that never closes.
CLOSE_LINGER_S = 2.0
#: Bytes one read takes while lingering (they are thrown away).
_LINGER_READ_BYTES = 65536


class DirectSocket:
    """Every write to one connection's TCP socket, in order and a whole frame at a time.

    The hub writes prepared frames without waiting (`send_nowait`); the write pump
    (`send_all`, `send_queued`), the frame reader's pongs and close frames
    (`send_close`) and Hypercorn's own writes (`send_raw`, `finish`: the server's hooks
    route them here) wait their turn under Hypercorn's send lock. A frame the kernel took
    only part of is *started*: its rest stays here and whoever writes next writes it first,
    so nothing ever lands inside a frame, and the hub starts no new frame until the write
    pump has taken the rest's place in its queue.
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
        "reader",
        "reader_done",
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
        #: Hypercorn's reader task for this socket, and set once it has stopped reading.
        self.reader: trio.lowlevel.Task | None = None
        self.reader_done = trio.Event()

    def route_writes(self) -> None:
        """From now on Hypercorn's writes to this socket go through `send_raw`/`finish`."""
        self._routed = True

    @property
    def routes_writes(self) -> bool:
        return self._routed

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
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            return 0
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            return 0
        finally:
            self._lock.release()
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
            with trio.move_on_after(CLOSE_LINGER_S):
                if trio.lowlevel.current_task() is self.reader:
                    while await self._stream.receive_some(_LINGER_READ_BYTES):
                        pass
                else:
                    await self.reader_done.wait()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the peer or Hypercorn has closed it already
        finally:
            with trio.CancelScope(shield=True):
                await self._stream.aclose()

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

    Hypercorn's own writes to the socket go through it from now on (the server's hooks
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


# ---- the fast receive path --------------------------------------------------------------------

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
#: RFC 6455 §7.4: close codes a peer may send (1004-1006 and 1015 are never sent).
_SENDABLE_CLOSE = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


class ProtocolViolation(Exception):
    """The client broke RFC 6455; close the connection with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    """An unmasked control frame (payload at most 125 bytes)."""
    return bytes((0x80 | opcode, len(payload))) + payload


def close_frame(code: int | None, reason: str = "") -> bytes:
    """A close frame with `code` (none when None) and `reason`, cut to fit a control frame."""
    if code is None:
        return control_frame(OP_CLOSE)
    return control_frame(OP_CLOSE, code.to_bytes(2, "big") + reason.encode()[:123])


def close_code(payload: bytes) -> int | None:
    """The status code of a client's close frame (None when it has none); RFC 6455 §7.4.

    Raises ProtocolViolation for a malformed payload (1002) or a reason that is not
    UTF-8 (1007).
    """
    if not payload:
        return None
    if len(payload) == 1:
        raise ProtocolViolation(1002, "close payload of one byte")
    code = int.from_bytes(payload[:2], "big")
    if code not in _SENDABLE_CLOSE and not 3000 <= code <= 4999:
        raise ProtocolViolation(1002, "invalid close code")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolViolation(1007, "close reason is not UTF-8") from None
    return code


def unmask(data: bytes, key: bytes) -> bytes:
    """XOR `data` with the 4-byte masking `key` (RFC 6455 §5.3), in C via big ints."""
    n = len(data)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class FrameReader:
    """Cuts a client's byte stream into messages and control frames (RFC 6455 §5).

    It replaces wsproto's frame decoder on connections NoChat reads itself: no extension
    (so no RSV bit may be set), client frames masked, control frames whole and at most
    125 bytes, fragments continued in order, a message at most `max_message` bytes
    (checked from the header, before any of it is buffered). The fragments of a text
    message are checked as they come (RFC 6455 §8.1): the fragment that makes the text
    invalid UTF-8 fails the connection with 1007 at once; a valid prefix that ends inside
    a code point is fine until the final fragment. (A text message in one frame is
    decoded, and so checked, by its receiver.)
    """

    __slots__ = ("_buf", "_max", "_opcode", "_parts", "_size", "_utf8")

    def __init__(self, max_message: int) -> None:
        self._buf = b""
        self._max = max_message
        self._opcode = 0
        self._parts: list[bytes] | None = None  # fragments of an unfinished message
        self._size = 0
        self._utf8: codecs.IncrementalDecoder | None = None  # while a text is in fragments

    def feed(self, data: bytes) -> tuple[list[tuple[int, bytes]], ProtocolViolation | None]:
        """The (opcode, payload) of every message and control frame `data` completes, in
        order, and the violation that ends the stream (nothing after it is read)."""
        buf = self._buf + data if self._buf else data
        out: list[tuple[int, bytes]] = []
        pos, end = 0, len(buf)
        try:
            while end - pos >= 2:
                b0, b1 = buf[pos], buf[pos + 1]
                opcode, fin = b0 & 0x0F, b0 & 0x80
                length, head = b1 & 0x7F, 6
                if length == 126:
                    if end - pos < 4:
                        break
                    length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 8
                elif length == 127:
                    if end - pos < 10:
                        break
                    length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 14
                self._check(b0, b1, length)
                if end - pos < head + length:
                    break
                payload = unmask(
                    buf[pos + head : pos + head + length], buf[pos + head - 4 : pos + head]
                )
                pos += head + length
                if opcode >= OP_CLOSE:
                    out.append((opcode, payload))
                    if opcode == OP_CLOSE:
                        pos = end  # nothing after a close frame counts
                        break
                elif fin and opcode:
                    out.append((opcode, payload))  # a whole message in one frame
                else:
                    if opcode:
                        self._opcode, self._parts, self._size = opcode, [], 0
                        if opcode == OP_TEXT:
                            self._utf8 = _utf8_decoder()
                    assert self._parts is not None
                    if self._utf8 is not None:
                        try:
                            self._utf8.decode(payload, final=bool(fin))
                        except UnicodeDecodeError:
                            raise ProtocolViolation(1007, "text is not UTF-8") from None
                    self._parts.append(payload)
                    self._size += length
                    if fin:
                        out.append((self._opcode, b"".join(self._parts)))
                        self._parts, self._size, self._utf8 = None, 0, None
        except ProtocolViolation as exc:
            self._buf = b""
            return out, exc
        self._buf = buf[pos:]
        return out, None

    def _check(self, b0: int, b1: int, length: int) -> None:
        """Raise ProtocolViolation unless a frame with this header may come now."""
        opcode, fin = b0 & 0x0F, b0 & 0x80
        if b0 & 0x70:
            raise ProtocolViolation(1002, "reserved bits set")
        if not b1 & 0x80:
            raise ProtocolViolation(1002, "client frames must be masked")
        if opcode >= OP_CLOSE:
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                raise ProtocolViolation(1002, "unknown opcode")
            if not fin or length > 125:
                raise ProtocolViolation(1002, "control frames must be whole and short")
            return
        if opcode == OP_CONTINUATION:
            if self._parts is None:
                raise ProtocolViolation(1002, "continuation of no message")
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._parts is not None:
                raise ProtocolViolation(1002, "new message inside a fragmented one")
        else:
            raise ProtocolViolation(1002, "unknown opcode")
        size = (self._size if opcode == OP_CONTINUATION else 0) + length
        if size > self._max:
            raise ProtocolViolation(1009, "message too big")
