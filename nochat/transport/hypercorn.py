"""Every Hypercorn internal NoChat touches, read from Hypercorn 0.18.0 (pinned in
pyproject.toml; tests/test_transport.py fails if a hook stops engaging).

- The direct writer: `DirectSocket` reaches the TCP stream under Hypercorn's WebSocket
  stream (`WSStream.send.__self__` is the H11 protocol, whose `send.__self__` is the TCP
  server with its `send_lock` and `stream`) and writes prepared frames to it, taking
  turns with Hypercorn's own writes through that lock. `attach` returns None when the
  internals do not look as expected (TLS, HTTP/2): the connection then uses ASGI sends.
- The direct reader: `WSStream.handle` is wrapped (`install`) so client bytes are cut by
  `wire.FrameReader` and handed to the app with `WSStream.app_put`, instead of wsproto.
- `NoChatConfig`: the settings those hooks read, and TCP_USER_TIMEOUT on the listening
  sockets.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Mapping
from typing import Any, cast

import trio
from hypercorn.config import Config, Sockets
from hypercorn.protocol.events import Data, Event, Request, StreamClosed
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream

from .. import wire

log = logging.getLogger(__name__)

#: Where the ASGI scope's extensions carry a connection's DirectSocket.
SCOPE_KEY = "nochat.direct"


class NoChatConfig(Config):
    """Hypercorn config whose listening sockets carry TCP_USER_TIMEOUT.

    `websocket.send` blocks while a peer does not read and Hypercorn shields that write,
    so no application timeout can end it; the kernel can. Accepted sockets inherit the
    option from the listening socket.
    """

    tcp_user_timeout_ms: int = 0
    websocket_compression: bool = True
    direct_send: bool = True

    def create_sockets(self) -> Sockets:
        sockets = super().create_sockets()
        if self.tcp_user_timeout_ms and hasattr(socket, "TCP_USER_TIMEOUT"):
            for sock in sockets.insecure_sockets + sockets.secure_sockets:
                sock.setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, self.tcp_user_timeout_ms
                )
        return sockets


class DirectSocket:
    """Writes prepared frames to one connection's TCP socket, in turn with Hypercorn."""

    __slots__ = ("_lock", "_shut", "_socket", "_stream", "reading")

    def __init__(self, lock: trio.Lock, stream: trio.SocketStream) -> None:
        self._lock = lock
        self._stream = stream
        self._socket = stream.socket
        self._shut = False
        #: NoChat's FrameReader cuts this connection's client frames (not wsproto).
        self.reading = False

    def shut(self) -> None:
        """No more frames: a close frame has gone out (they would follow it)."""
        self._shut = True

    def send_nowait(self, data: bytes) -> int:
        """Write what the kernel takes now: the byte count, 0 if nothing could go now.

        Hypercorn's own writes (close frames, HTTP) hold the same lock, so frames never
        interleave. Raises OSError when the peer is gone.
        """
        # Ask the socket for its descriptor every time: once Hypercorn has closed it, the
        # number may already belong to a newer connection (fileno() is -1 then).
        fd = self._socket.fileno()
        if fd < 0 or self._shut:
            raise BrokenPipeError("the connection is closed")
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            return 0
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0
        finally:
            self._lock.release()

    async def send_all(self, data: bytes) -> None:
        """Write all of `data`, waiting for the socket; shielded like Hypercorn's writes."""
        async with self._lock:
            if self._shut:
                raise BrokenPipeError("the connection is closing")
            with trio.CancelScope(shield=True):
                await self._stream.send_all(data)


def attach(ws_stream: Any) -> DirectSocket | None:
    """The DirectSocket under a Hypercorn WSStream, or None when it cannot be had safely."""
    try:
        h11_protocol = ws_stream.send.__self__
        tcp_server = h11_protocol.send.__self__
        lock, stream = tcp_server.send_lock, tcp_server.stream
    except AttributeError:
        return None
    if not isinstance(lock, trio.Lock) or not isinstance(stream, trio.SocketStream):
        return None
    return DirectSocket(lock, stream)


#: Where a WSStream NoChat reads itself keeps its `wire.FrameReader`.
_READER = "_nochat_reader"


def install() -> None:
    """Hook what Hypercorn has no setting for into streams whose config is a NoChatConfig.

    - `websocket_compression = False` refuses permessage-deflate: Hypercorn accepts it
      whenever a client offers it (every browser does), and each compressing connection
      keeps zlib state of a few hundred KiB. The offer is dropped before Hypercorn's
      handshake reads it.
    - `direct_send = True` puts a `DirectSocket` for the connection in the ASGI scope's
      extensions, for the hub's fast send path (the direct writer), and, without
      deflate, has `wire.FrameReader` cut the client's frames (the direct reader).

    `WSStream.handle` is wrapped once per process (idempotent); a plain Hypercorn
    `Config` keeps the stock behaviour. `server.serve` calls this before it serves.
    """
    if getattr(WSStream.handle, "_nochat_hooks", False):
        return
    original = WSStream.handle

    async def handle(self: WSStream, event: Event) -> None:
        config = self.config
        if not isinstance(config, NoChatConfig):
            await original(self, event)
        elif isinstance(event, Data):
            reader = getattr(self, _READER, None)
            if reader is not None and self.handshake.accepted and not self.closed:
                await _receive_direct(self, reader, event.data)
            else:
                await original(self, event)
        elif isinstance(event, Request):
            if not config.websocket_compression:
                headers = [
                    (n, v) for n, v in event.headers if n.lower() != b"sec-websocket-extensions"
                ]
                event = dataclasses.replace(event, headers=headers)
            await original(self, event)
            if config.direct_send and not self.closed:
                extensions: dict[str, object] = self.scope["extensions"]  # type: ignore[assignment]
                sink = extensions[SCOPE_KEY] = attach(self)
                if self.handshake.extensions is None:  # no deflate: frames are plain
                    setattr(self, _READER, wire.FrameReader(config.websocket_max_message_size))
                    if sink is not None:
                        sink.reading = True
        else:
            await original(self, event)

    handle._nochat_hooks = True  # type: ignore[attr-defined]
    WSStream.handle = handle  # type: ignore[method-assign]


async def _receive_direct(stream: WSStream, reader: wire.FrameReader, data: bytes) -> None:
    """Client bytes → ASGI messages, cut by `wire.FrameReader` instead of wsproto.

    Pings are answered, pongs dropped, a close is answered and ends the stream as
    `WSStream` would; a protocol violation closes with its RFC 6455 code (1002, 1007 for
    text that is not UTF-8, 1009 for a message over the size limit).
    """
    frames, violation = reader.feed(data)
    for opcode, payload in frames:
        if stream.closed:
            return
        if opcode == wire.OP_TEXT:
            try:
                text = payload.decode()
            except UnicodeDecodeError:
                violation = wire.ProtocolViolation(1007, "text is not UTF-8")
                break
            await _app_put(stream, {"type": "websocket.receive", "bytes": None, "text": text})
        elif opcode == wire.OP_BINARY:
            await _app_put(stream, {"type": "websocket.receive", "bytes": payload, "text": None})
        elif opcode == wire.OP_PING:
            pong = wire.control_frame(wire.OP_PONG, payload)
            await stream.send(Data(stream_id=stream.stream_id, data=pong))
        elif opcode == wire.OP_CLOSE:
            try:
                code = wire.close_code(payload)
            except wire.ProtocolViolation as exc:
                violation = exc
                break
            await _end_stream(stream, code, "")
            return
    if violation is not None and not stream.closed:
        await _end_stream(stream, violation.code, violation.reason)


async def _app_put(stream: WSStream, message: dict[str, object]) -> None:
    assert stream.app_put is not None  # set when the handshake was passed to the app
    await stream.app_put(message)


async def _end_stream(stream: WSStream, code: int | None, reason: str) -> None:
    """Answer with a close frame (unless the app has sent one), then end the stream."""
    extensions = cast(dict[str, object], stream.scope["extensions"])
    direct = extensions.get(SCOPE_KEY)
    if isinstance(direct, DirectSocket):
        direct.shut()  # nothing may follow the close frame
    if stream.state == ASGIWebsocketState.CONNECTED:
        stream.state = ASGIWebsocketState.CLOSED
        frame = wire.close_frame(code, reason)
        await stream.send(Data(stream_id=stream.stream_id, data=frame))
    await stream.send(StreamClosed(stream_id=stream.stream_id))


def sink_of(scope: Mapping[str, Any]) -> DirectSocket | None:
    """The DirectSocket the hooks put in a WebSocket scope (None: use ASGI sends)."""
    direct = scope.get("extensions", {}).get(SCOPE_KEY)
    return direct if isinstance(direct, DirectSocket) else None
