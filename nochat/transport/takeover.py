"""The takeover: once a WebSocket is accepted, NoChat owns its socket and Hypercorn lets go.

Part of the transport adapter (Hypercorn 0.18.0 internals, pinned). Why: each idle
connection kept Hypercorn's whole per-connection stack alive (`TCPServer` and its task
group, `H11Protocol` with h11's state, `WSStream` with its scope, handshake and wsproto
connection, the ASGI task and its queue, Hypercorn's reader task): ≈ 17.8 KiB of a
35 KiB connection, and a hop through all of it for every client frame (docs/
BENCHMARKS.md, "Idle"). Hypercorn stays the launcher, the HTTP server and the handshake;
after the 101, the connection is NoChat's.

How, in order (`Handover.take_over`, instead of the ASGI accept):
1. Hypercorn's reader has read the request and nothing after it: when a request can be
   taken over, it waits for the app's decision before reading on (`DirectSocket.offer`;
   an app that answers through ASGI instead decides "no" with its first message). Told
   to stop, it returns without telling Hypercorn's protocol that the connection closed
   (connection_hooks.py).
2. The socket's descriptor is detached from Hypercorn's trio socket into a new one (no
   syscall, no second descriptor), and the connection's `DirectSocket` writes to it from
   then on; Hypercorn's hooks drop anything it would still write (`DirectSocket.handover`
   is TAKEN), and its own close of the old, detached socket does nothing.
3. NoChat writes the 101 itself (`wire.handshake_response`; Hypercorn has checked the
   handshake): no client byte can come before it, so none was read by Hypercorn.
4. The app hands the `TakenSocket` to a `SocketHost` (a NoChat nursery) and its ASGI task
   returns; Hypercorn's "app finished" is dropped (hypercorn.py), its task group ends,
   `TCPServer.run` returns, and everything Hypercorn made for the connection is garbage.
   Hypercorn's accept (its wsproto connection and the 101 through h11) was a sixth of
   the server's CPU per connect; it no longer runs.

Where that is not sound it is not done, and the connection stays on Hypercorn's path:
TLS (the socket is under an SSLStream: no `DirectSocket`), permessage-deflate negotiated
(NoChat's reader reads plain frames only), `NOCHAT_DIRECT_SEND=false`, or
`NOCHAT_SOCKET_TAKEOVER=false`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn

import trio

from .. import wire
from .direct import NONE, OFFERED, RELEASED, DirectSocket

log = logging.getLogger(__name__)

#: Where the ASGI scope's extensions carry a WebSocket's `Handover` (when it can have one).
HANDOVER_KEY = "nochat.handover"
#: Hypercorn's reader stops at its next scheduling step; this bounds the wait for a
#: reader stuck in a write (then the connection stays on Hypercorn's path).
RELEASE_TIMEOUT_S = 5.0
#: Bytes one read takes from a taken-over socket.
READ_BYTES = 65536


class Disconnected(Exception):
    """Raised by a socket's `receive` when the client has gone (or the connection ended)."""


class Handover:
    """A WebSocket that NoChat may take over instead of accepting it through ASGI
    (`handover_of`)."""

    __slots__ = ("_direct", "_key", "_max_message")

    def __init__(self, direct: DirectSocket, key: bytes, max_message: int) -> None:
        self._direct = direct
        self._key = key  # Sec-WebSocket-Key
        self._max_message = max_message
        direct.offer()

    @property
    def direct(self) -> DirectSocket:
        return self._direct

    async def take_over(self, subprotocol: str | None) -> TakenSocket | None:
        """Accept the WebSocket on a socket NoChat owns from now on; None when Hypercorn's
        reader did not let go (the connection ended first, or the reader was stuck in a
        write): then it is Hypercorn's still, and the app accepts through ASGI."""
        direct = self._direct
        done = direct.reader_done
        if done is None or done.is_set() or direct.handover != OFFERED:
            direct.decide(take=False)  # ended, or Hypercorn has refused the handshake
            return None
        decided = direct.decided
        parked = decided is not None and decided.statistics().tasks_waiting > 0
        direct.decide(take=True)
        if parked:  # the reader waits for this decision: it returns when it next runs
            await done.wait()
        else:  # it is busy still (its reply to the request?): a bounded wait
            with trio.move_on_after(RELEASE_TIMEOUT_S):
                await done.wait()
        if direct.handover != RELEASED:
            direct.handover = NONE  # a reader still running goes on reading for Hypercorn
            return None
        old: Any = direct.stream.socket
        fd = old.detach()
        sock = trio.socket.from_stdlib_socket(socket.socket(old.family, old.type, old.proto, fd))
        direct.rebind(trio.SocketStream(sock))
        taken = TakenSocket(direct, wire.FrameReader(self._max_message))
        response = wire.handshake_response(self._key, subprotocol)
        try:
            with contextlib.suppress(OSError):  # gone: its first read says so
                written = direct.send_nowait(response)  # an empty socket takes it whole
                if not written:
                    await direct.send_all(response)
                elif written < len(response):
                    await direct.send_queued(b"")  # the rest, which the socket kept
        except BaseException:
            sock.close()  # cancelled before anyone owns it: Hypercorn no longer closes it
            raise
        return taken


def handover_of(scope: Mapping[str, Any]) -> Handover | None:
    """The Handover the hooks put in a WebSocket scope (None: it cannot be taken over)."""
    handover = scope.get("extensions", {}).get(HANDOVER_KEY)
    return handover if isinstance(handover, Handover) else None


class TakenSocket:
    """A taken-over WebSocket: NoChat's reader (`wire.FrameReader`) and the connection's
    `DirectSocket` for every write (a `connection.Socket`).

    Pings are answered, pongs dropped; the client's close is answered with its code and
    a protocol violation closes with its RFC 6455 code (1002, 1007, 1009), as on
    Hypercorn's path (hypercorn.py `_receive_direct`). `finish` ends the connection (EOF,
    the close linger, the socket closed): `SocketHost` calls it when the connection's task
    ends, whatever ended it.
    """

    __slots__ = ("_direct", "_drained", "_frames", "_reader", "_violation")

    def __init__(self, direct: DirectSocket, reader: wire.FrameReader) -> None:
        self._direct = direct
        self._reader = reader
        #: Messages and control frames read but not handled yet, last first (None: none),
        #: and the violation that comes after them.
        self._frames: list[tuple[int, bytes]] | None = None
        self._violation: wire.ProtocolViolation | None = None
        #: The last read took what the socket had (the next one waits for more first).
        self._drained = True

    @property
    def direct(self) -> DirectSocket:
        return self._direct

    async def receive(self) -> str | bytes:
        """The next message's payload; raises Disconnected when the connection ends."""
        while True:
            frames = self._frames
            if not frames:
                self._frames = None
                if self._violation is not None:
                    await self._fail(self._violation.code, self._violation.reason)
                frames, self._violation = self._reader.feed(await self._read())
                if not frames:
                    continue
                frames.reverse()
                self._frames = frames
            opcode, payload = frames.pop()
            if opcode == wire.OP_TEXT:
                try:
                    return payload.decode()
                except UnicodeDecodeError:
                    await self._fail(1007, "text is not UTF-8")
            elif opcode == wire.OP_BINARY:
                return payload
            elif opcode == wire.OP_PING:
                try:
                    await self._direct.send_raw(wire.control_frame(wire.OP_PONG, payload))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    raise Disconnected from None
            elif opcode == wire.OP_CLOSE:
                try:
                    code = wire.close_code(payload)
                except wire.ProtocolViolation as exc:
                    await self._fail(exc.code, exc.reason)
                await self._fail(code, "")  # the client's close, answered with its code

    async def _read(self) -> bytes:
        """The next bytes from the socket; raises Disconnected at its end. After a read
        that emptied the socket it waits first (no failed read to raise and catch)."""
        sock = self._direct.stream.socket
        waited = False
        while True:
            if self._drained:
                try:
                    await trio.lowlevel.wait_readable(sock)
                except trio.ClosedResourceError:
                    raise Disconnected from None
                waited = True
            fd = sock.fileno()
            if fd < 0:
                raise Disconnected
            try:
                data = os.read(fd, READ_BYTES)
            except BlockingIOError:
                self._drained = True  # (a spurious wake-up: wait again)
                continue
            except OSError:
                raise Disconnected from None
            if not data:
                raise Disconnected
            self._drained = len(data) < READ_BYTES
            if not waited:  # a client that never pauses cannot starve the others; shielded:
                await trio.lowlevel.cancel_shielded_checkpoint()  # what was read is kept
            return data

    async def _fail(self, code: int | None, reason: str) -> NoReturn:
        """Answer or fail the connection with a close frame; the connection has ended."""
        self._frames = self._violation = None
        await self.close(code, reason)
        raise Disconnected

    async def send(self, data: str) -> None:
        await self._direct.send_all(wire.text_frame(data))

    async def close(self, code: int | None, reason: str = "") -> None:
        """The close frame (the last frame this socket sends); `finish` ends the rest."""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._direct.send_close(wire.close_frame(code, reason))  # or the peer is gone

    async def finish(self) -> None:
        """EOF, the close linger (reading and dropping what the client still sends), then
        the socket closed (RFC 6455 §7.1.1; `DirectSocket.finish`)."""
        await self._direct.finish()


class SocketHost:
    """The nursery taken-over connections run in, for the app's lifetime.

    Started with `nursery.start(host.run)`; `adopt` starts a connection's task there.
    Each task's failure stays its own (logged); its socket is finished whatever ended it.
    Cancelled at shutdown after NoChat has closed every connection (1012, `Drain`), it
    cuts what lingers short and closes those sockets.
    """

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        #: Taken-over connections running now.
        self.count = 0

    @property
    def running(self) -> bool:
        return self._nursery is not None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None

    def adopt(self, socket: TakenSocket, serve: Callable[[], Awaitable[None]]) -> bool:
        """Run `serve` (the connection) in the host's nursery, then finish `socket`; False
        when the host has stopped (shutdown): the caller runs `self.serve` itself."""
        if self._nursery is None:
            return False
        self._nursery.start_soon(self.serve, socket, serve)
        return True

    async def serve(self, socket: TakenSocket, serve: Callable[[], Awaitable[None]]) -> None:
        """Run `serve`, its failure logged, then finish `socket`."""
        self.count += 1
        try:
            await serve()
        except Exception:
            log.exception("a taken-over connection failed")
        finally:
            self.count -= 1
            await socket.finish()
