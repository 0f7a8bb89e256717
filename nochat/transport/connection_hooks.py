"""Hooks on Hypercorn's TCP connection (`TCPServer`), for configs that are a NoChatConfig.

Part of the transport adapter: `install_connection_hooks` is called by
`transport.install()`.

- Once a WebSocket is attached (`direct.attach`), every write, the EOF and the close go
  through its `DirectSocket`, in order under the send lock: Hypercorn's `send_eof` takes
  no lock and collided with other writes (trio.BusyResourceError), and its writes could
  land inside a frame the hub had half written.
- The close lingers (`DirectSocket.finish`), reading until the client closes; the read
  loop (Hypercorn's own, copied) notes when the client was last heard, so the linger
  lasts while the client is still sending, not a fixed time.
- An exception of one connection ends that connection, logged, never the server
  (Hypercorn runs connections in the server's own nursery).
- The takeover (takeover.py): while the app decides whether to take the socket over, the
  read loop reads nothing (`DirectSocket.offer`); told to stop, it returns without
  telling Hypercorn's protocol that the connection closed; once NoChat has the socket,
  nothing of Hypercorn's writes to it any more, and Hypercorn's objects are let go.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import trio
from hypercorn.events import Closed, RawData
from hypercorn.events import Event as ConnectionEvent
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer

from .direct import OFFERED, RELEASED, RELEASING, TAKEN, DirectSocket, socket_of
from .hypercorn import NoChatConfig
from .idle import _IdleTask

log = logging.getLogger(__name__)


def _direct_of(server: TCPServer) -> DirectSocket | None:
    return socket_of(server) if isinstance(server.config, NoChatConfig) else None


def install_connection_hooks() -> None:
    """Wrap `TCPServer.run`, `_read_data`, `protocol_send` and `_close` (once per process)."""
    if getattr(TCPServer.run, "_nochat_hooks", False):
        return
    original_run = TCPServer.run
    original_read = TCPServer._read_data
    original_send = TCPServer.protocol_send
    original_close = TCPServer._close

    async def run(self: TCPServer) -> None:
        if not isinstance(self.config, NoChatConfig):
            await original_run(self)
            return
        try:
            await original_run(self)
        except* Exception:
            log.exception("a connection failed")
        direct = socket_of(self)
        if direct is not None and direct.handover == TAKEN:
            _let_go(self)

    async def read_data(self: TCPServer) -> None:
        direct = _direct_of(self)
        if direct is None:
            await original_read(self)
            return
        direct.reader, done = trio.lowlevel.current_task(), direct.reader_done
        try:
            await _read_noting_when_heard(self, direct)
        finally:
            assert done is not None
            done.set()

    async def protocol_send(self: TCPServer, event: ConnectionEvent) -> None:
        direct = _direct_of(self)
        if direct is None or not direct.routes_writes:
            await original_send(self, event)
        elif direct.handover == TAKEN:
            return  # NoChat owns the socket: Hypercorn has nothing more to say on it
        elif isinstance(event, RawData):
            try:
                await direct.send_raw(event.data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await self.protocol.handle(Closed())
        elif isinstance(event, Closed):
            await direct.finish()
            await self.protocol.handle(Closed())
        else:
            await original_send(self, event)

    async def close(self: TCPServer) -> None:
        direct = _direct_of(self)
        if direct is None or direct.handover != TAKEN:
            await original_close(self)
        # else: the socket is NoChat's now (Hypercorn's trio socket is detached anyway)

    run._nochat_hooks = True  # type: ignore[attr-defined]
    TCPServer.run = run  # type: ignore[method-assign]
    TCPServer._read_data = read_data  # type: ignore[method-assign]
    TCPServer.protocol_send = protocol_send  # type: ignore[method-assign]
    TCPServer._close = close  # type: ignore[method-assign]


def _read_now(server: TCPServer) -> bytes | None:
    """The connection's first bytes if they are there already (its request, usually);
    else None, and the keep-alive timer that was deferred for this starts (idle.py)."""
    idle = server.idle_task
    if not isinstance(idle, _IdleTask) or idle.deferred is None:
        return None
    stream: Any = server.stream  # a SocketStream (the timer defers only then)
    try:
        data: bytes | None = os.read(stream.socket.fileno(), MAX_RECV)
    except OSError:  # BlockingIOError (nothing yet), or gone: receive_some says which
        data = None
    if not data:  # (b"", the peer has closed: receive_some sees it too)
        idle.start_deferred()
        return None
    return data


def _let_go(server: TCPServer) -> None:
    """Break the cycles among Hypercorn's objects of a taken-over connection (the TCP
    server, its protocol wrapper, H11Protocol and WSStream refer to each other through
    bound methods), so they are freed now rather than by the collector: ~50 collected
    objects per connection kept the young generation filling up while sockets connected."""
    wrapper = vars(server).get("protocol")
    inner = vars(wrapper).get("protocol") if wrapper is not None else None
    stream = vars(inner).get("stream") if inner is not None else None
    for obj in (stream, inner, wrapper, server):
        if obj is not None:
            vars(obj).clear()


async def _read_noting_when_heard(server: TCPServer, direct: DirectSocket) -> None:
    """Hypercorn 0.18.0's `TCPServer._read_data`, plus `direct.heard` after each read, and
    the takeover's pause: after a WebSocket request NoChat may take over, it reads nothing
    until the app has decided, and returns without Hypercorn's `Closed` when the app
    takes the socket (so every byte after the request is left in the kernel for NoChat)."""
    read_timeout = server.config.read_timeout or math.inf
    first: bytes | None = _read_now(server)
    data: bytes | bytearray
    while True:
        decided = direct.decided
        if direct.handover == OFFERED and decided is not None:
            await decided.wait()
        if direct.handover == RELEASING:
            direct.handover = RELEASED
            return
        try:
            if first is not None:
                data, first = first, None
            elif read_timeout == math.inf:  # NoChat's (no read_timeout): no scope per read
                data = await server.stream.receive_some(MAX_RECV)
            else:
                with trio.fail_after(read_timeout):
                    data = await server.stream.receive_some(MAX_RECV)
        except (trio.ClosedResourceError, trio.BrokenResourceError, trio.TooSlowError):
            break
        direct.heard = trio.current_time()
        await server.protocol.handle(RawData(bytes(data)))
        if data == b"":
            break
    await server.protocol.handle(Closed())
