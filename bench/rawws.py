"""A minimal WebSocket client on raw non-blocking sockets, all read by one `Poller` task.

The generator's clients mostly receive. Through trio-websocket a frame cost two task
switches, a memory channel hop and a wsproto parse (~9 µs of generator CPU per delivery in
the latency scenario, where every frame carries one event), so with 1,000 clients the
generator, not the server, set the latency. Here a connection is a socket and no task:
the poller wakes when its epoll has ready sockets, reads each once and cuts what it got
into frames by hand. Server frames are unmasked (RFC 6455 §5.1): a 2-byte header, then a
16- or 64-bit length when the 7-bit one is 126 or 127. Client frames are masked with a
random key, as the RFC requires. Pings are answered with pongs; a close frame ends the
connection with `ConnectionClosed(code)`. When the server accepts permessage-deflate,
compressed (RSV1) messages are inflated with one zlib context per connection.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import random
import select
import socket
import zlib
from typing import Final, Protocol

import trio

#: Bytes asked of the kernel per read; a fan-out round for one client is well below this.
RECV_BYTES: Final = 256 * 1024
#: Most ready sockets handled per wake-up of the poller before other tasks get a turn.
POLL_BATCH: Final = 1024
#: Most polls per wake-up (each reads a batch): bounds how long other tasks wait.
POLL_ROUNDS: Final = 16
#: Longest HTTP response head the handshake accepts.
MAX_HEAD_BYTES: Final = 16 * 1024
MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0, 1, 2, 8, 9, 10
_DEFLATE_TAIL: Final = b"\x00\x00\xff\xff"


class ConnectionClosed(Exception):
    """The connection ended: `code` is the close code (1006 when there was no close frame)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class HandshakeError(Exception):
    """The server did not answer the upgrade with 101 (`status` says what it answered)."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(f"{status} {why}")
        self.status = status


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One complete masked client frame (FIN set)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = random.getrandbits(32).to_bytes(4, "big")
    # XOR the whole payload at once as one big integer: no per-byte Python loop.
    mask = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
    return head + key + masked


class RawWebSocket:
    """One client connection; reads are done by a `Poller`, any task may send."""

    __slots__ = ("_backlog", "_close_sent", "_inflater", "_message", "_rest", "_sock")

    def __init__(self, sock: socket.socket, rest: bytes, inflater: zlib._Decompress | None) -> None:
        self._sock = sock
        self._rest = rest
        self._inflater = inflater
        self._backlog: bytearray | None = None
        self._message: list[bytes] = []  # fragments of a message still being received
        self._close_sent = False

    # ---- opening and closing ----------------------------------------------------------------

    @classmethod
    async def connect(
        cls, port: int, token: str, *, subprotocol: str, deflate: bool = False
    ) -> RawWebSocket:
        """TCP connect to 127.0.0.1:port and upgrade GET /ws with a bearer token."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex(("127.0.0.1", port))
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, os.strerror(err))
            await trio.lowlevel.wait_writable(sock)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
            key = base64.b64encode(os.urandom(16))
            lines = [
                b"GET /ws HTTP/1.1",
                b"Host: 127.0.0.1:%d" % port,
                b"Upgrade: websocket",
                b"Connection: Upgrade",
                b"Sec-WebSocket-Key: " + key,
                b"Sec-WebSocket-Version: 13",
                b"Sec-WebSocket-Protocol: " + subprotocol.encode(),
                b"Authorization: Bearer " + token.encode(),
            ]
            if deflate:  # what browsers offer
                lines.append(
                    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
                )
            await _send_all(sock, b"\r\n".join(lines) + b"\r\n\r\n")
            head, rest = await _read_head(sock)
            inflater = _check_response(head, key, subprotocol)
            return cls(sock, rest, inflater)
        except BaseException:
            sock.close()
            raise

    def close_socket(self) -> None:
        """Release the socket (no close handshake); safe to call twice."""
        if self._sock.fileno() >= 0:
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()

    async def send_close(self, code: int = 1000) -> None:
        """Start the closing handshake; `receive` then ends with the server's close frame."""
        if not self._close_sent:
            self._close_sent = True
            await self._send(client_frame(_OP_CLOSE, code.to_bytes(2, "big")))

    # ---- sending ------------------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        await self._send(client_frame(_OP_TEXT, text.encode()))

    def send_text_nowait(self, text: str) -> None:
        """Send a small frame now, without waiting (from the poller's callbacks)."""
        self._queue(client_frame(_OP_TEXT, text.encode()))

    async def _send(self, frame: bytes) -> None:
        """Write `frame`; what the kernel will not take now is queued behind one waiting task,
        so frames from several tasks never interleave and only one task waits for writability."""
        if self._backlog is not None:
            self._backlog += frame  # the task already waiting writes it, in order
            return
        try:
            n = self._sock.send(frame)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            raise ConnectionClosed(1006) from exc
        if n == len(frame):
            return
        backlog = self._backlog = bytearray(frame[n:])
        try:
            while backlog:
                try:
                    await trio.lowlevel.wait_writable(self._sock)
                except trio.ClosedResourceError as exc:  # closed under us by the reader
                    raise ConnectionClosed(1006) from exc
                try:
                    n = self._sock.send(backlog)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    raise ConnectionClosed(1006) from exc
                del backlog[:n]
        finally:
            self._backlog = None

    # ---- receiving ----------------------------------------------------------------------------

    def receive_nowait(self, buffer: memoryview) -> list[bytes]:
        """Read what the kernel holds now (one recv into `buffer`) and return the complete
        data messages' payloads, possibly none. Control frames are handled here; a close
        frame or EOF raises ConnectionClosed.

        `recv(n)` would allocate n bytes per call: for a 256 KiB n that is an mmap, page
        faults and an munmap for every 100-byte frame (2/3 of the generator's time in the
        latency scenario). One buffer, reused, and a copy of what arrived cost neither.
        """
        try:
            n = self._sock.recv_into(buffer)
        except BlockingIOError:
            return []
        except OSError as exc:
            raise ConnectionClosed(1006) from exc
        if not n:
            raise ConnectionClosed(1006)
        chunk = bytes(buffer[:n])
        return self._parse(self._rest + chunk if self._rest else chunk)

    def parse_rest(self) -> list[bytes]:
        """The messages that arrived with the handshake response, if any (once)."""
        return self._parse(self._rest) if self._rest else []

    def fileno(self) -> int:
        return self._sock.fileno()

    def _parse(self, data: bytes) -> list[bytes]:
        """Cut the complete frames out of `data`; keep the tail in `_rest`; answer control
        frames (queued for sending). Returns the payloads of complete data messages."""
        out: list[bytes] = []
        pos = 0
        end_all = len(data)
        while end_all - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            start = pos + 2
            if length == 126:
                if end_all - pos < 4:
                    break
                length = int.from_bytes(data[start : start + 2], "big")
                start += 2
            elif length == 127:
                if end_all - pos < 10:
                    break
                length = int.from_bytes(data[start : start + 8], "big")
                start += 8
            if b1 & 0x80 or length > MAX_MESSAGE_BYTES:
                raise ConnectionClosed(1002)  # a server must not mask; nor flood us
            end = start + length
            if end > end_all:
                break
            payload = data[start:end]
            pos = end
            opcode = b0 & 0x0F
            if opcode in (_OP_TEXT, _OP_BINARY, _OP_CONT):
                if opcode == _OP_CONT and not self._message:
                    raise ConnectionClosed(1002)  # a continuation of nothing
                if opcode != _OP_CONT:
                    self._message = [bytes((b0 & 0x40,))]  # first item: the RSV1 bit
                self._message.append(payload)
                if b0 & 0x80:  # FIN
                    out.append(self._finish_message())
            elif opcode == _OP_PING:
                self._queue(client_frame(_OP_PONG, payload))
            elif opcode == _OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                if not self._close_sent:
                    self._close_sent = True
                    self._queue(client_frame(_OP_CLOSE, payload[:2]))
                raise ConnectionClosed(code)
        self._rest = data[pos:] if pos < end_all else b""
        return out

    def _finish_message(self) -> bytes:
        rsv1, *parts = self._message
        self._message = []
        payload = parts[0] if len(parts) == 1 else b"".join(parts)
        if rsv1[0]:
            if self._inflater is None:
                raise ConnectionClosed(1002)
            payload = self._inflater.decompress(payload + _DEFLATE_TAIL)
        return payload

    def _queue(self, frame: bytes) -> None:
        """Send a control reply without waiting (from inside `_parse`)."""
        if self._backlog is not None:
            self._backlog += frame
            return
        try:
            n = self._sock.send(frame)
        except OSError:
            n = 0
        if n < len(frame):  # a socket too full for a 6-byte pong: the connection is lost
            raise ConnectionClosed(1006)


class Reader(Protocol):
    """What a `Poller` calls for a connection: synchronously, from the poller's task."""

    def on_messages(self, ws: RawWebSocket, payloads: list[bytes]) -> None: ...

    def on_closed(self, code: int) -> None: ...

    def on_failed(self, exc: Exception) -> None: ...


class Poller:
    """Reads every registered connection from one task: waits for its own epoll to turn
    readable, then handles all ready sockets in a row. A Trio task per connection would
    cost a scheduler pass and an epoll_ctl per frame; with one event per frame (the latency
    scenario) that was most of the generator's CPU."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._conns: dict[int, tuple[RawWebSocket, Reader]] = {}
        self._buffer = memoryview(bytearray(RECV_BYTES))  # every socket is read into it
        self.wakes = 0  # times the task woke up
        self.reads = 0  # socket reads done, over all wake-ups

    def add(self, ws: RawWebSocket, reader: Reader) -> None:
        """Start delivering `ws`'s messages to `reader` (raises ConnectionClosed at once
        if what came with the handshake already closed it)."""
        fd = ws.fileno()
        self._conns[fd] = (ws, reader)
        self._epoll.register(fd, select.EPOLLIN)
        if payloads := ws.parse_rest():
            reader.on_messages(ws, payloads)

    def remove(self, ws: RawWebSocket) -> None:
        """Stop reading `ws`; call before closing its socket. Safe to call twice."""
        fd = ws.fileno()
        entry = self._conns.get(fd)
        if entry is not None and entry[0] is ws:
            del self._conns[fd]
            if not self._epoll.closed:  # at shutdown the poller may have ended first
                self._epoll.unregister(fd)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                await trio.lowlevel.wait_readable(self._epoll.fileno())
                self.wakes += 1
                # While the server is still writing a burst, more sockets turn ready as we
                # read: poll again at once (a syscall) rather than through the scheduler.
                for _ in range(POLL_ROUNDS):
                    ready = self._epoll.poll(0, POLL_BATCH)
                    if not ready:
                        break
                    self._read(ready)
        finally:
            trio.lowlevel.notify_closing(self._epoll.fileno())
            self._epoll.close()

    def _read(self, ready: list[tuple[int, int]]) -> None:
        self.reads += len(ready)
        for fd, _ in ready:
            entry = self._conns.get(fd)
            if entry is None:
                continue
            ws, reader = entry
            try:
                if payloads := ws.receive_nowait(self._buffer):
                    reader.on_messages(ws, payloads)
            except ConnectionClosed as exc:
                self.remove(ws)
                reader.on_closed(exc.code)
            except Exception as exc:  # noqa: BLE001 - one client's bug ends only it
                self.remove(ws)
                reader.on_failed(exc)


async def _send_all(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)


async def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD_BYTES:
            raise HandshakeError(0, "response head too long")
        await trio.lowlevel.wait_readable(sock)
        try:
            chunk = sock.recv(MAX_HEAD_BYTES)
        except BlockingIOError:
            continue
        if not chunk:
            raise HandshakeError(0, "connection closed during the handshake")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def _check_response(head: bytes, key: bytes, subprotocol: str) -> zlib._Decompress | None:
    """Validate the 101 response; return an inflater if permessage-deflate was accepted."""
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if status != 101:
        raise HandshakeError(status, status_line)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
    if headers.get("sec-websocket-accept") != accept:
        raise HandshakeError(status, "bad Sec-WebSocket-Accept")
    if headers.get("sec-websocket-protocol") != subprotocol:
        raise HandshakeError(status, "subprotocol not accepted")
    if "permessage-deflate" in headers.get("sec-websocket-extensions", ""):
        return zlib.decompressobj(-zlib.MAX_WBITS)
    return None
