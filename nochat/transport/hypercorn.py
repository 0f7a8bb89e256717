"""Every Hypercorn internal NoChat touches on the WebSocket stream, read from Hypercorn
0.18.0 (pinned in pyproject.toml; tests/test_transport.py fails if a hook stops engaging).

- The direct writer: `direct.attach` gives each accepted WebSocket the `DirectSocket` of
  its TCP connection, which every write to that socket then goes through (the hub's,
  the write pump's and Hypercorn's own, routed by connection_hooks.py).
- The direct reader: `WSStream.handle` is wrapped (`install`) so client bytes are cut by
  `wire.FrameReader` and handed to the app with `WSStream.app_put`, instead of wsproto.
- The app's receive queue (`_AppInbox`) stops holding Hypercorn's reader up once the
  app has closed the socket or finished.
- The takeover (takeover.py): a WebSocket that NoChat can read and write itself gets a
  `Handover` in its scope; once NoChat has taken the socket, whatever the app's ASGI
  task still tells Hypercorn (its end) is dropped.
- `NoChatConfig`: the settings those hooks read, and TCP_USER_TIMEOUT on the listening
  sockets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import trio
from hypercorn.config import Config, Sockets
from hypercorn.protocol.events import Data, Event, Request, StreamClosed
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream

from .. import wire
from .direct import TAKEN, DirectSocket, attach
from .takeover import HANDOVER_KEY, Handover, handover_of

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
    socket_takeover: bool = True

    def create_sockets(self) -> Sockets:
        sockets = super().create_sockets()
        if self.tcp_user_timeout_ms and hasattr(socket, "TCP_USER_TIMEOUT"):
            for sock in sockets.insecure_sockets + sockets.secure_sockets:
                sock.setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, self.tcp_user_timeout_ms
                )
        return sockets


#: Where a WSStream NoChat reads itself keeps its `wire.FrameReader`.
_READER = "_nochat_reader"


def install() -> None:
    """Hook what Hypercorn has no setting for into streams whose config is a NoChatConfig.

    - `websocket_compression = False` refuses permessage-deflate: Hypercorn accepts it
      whenever a client offers it (every browser does), and each compressing connection
      keeps zlib state of a few hundred KiB. The offer is dropped before Hypercorn's
      handshake reads it.
    - Every accepted WebSocket gets its connection's `DirectSocket` (`attach`), which
      Hypercorn's own writes go through from then on; its receive queue becomes an
      `_AppInbox` (`WSStream.app_send` tells it when the app has closed or finished).
    - `direct_send = True` also puts that `DirectSocket` in the ASGI scope's extensions,
      for the hub's fast send path (the direct writer), and, without deflate, has
      `wire.FrameReader` cut the client's frames (the direct reader).

    `WSStream.handle` and `app_send` are wrapped once per process (idempotent); a plain
    Hypercorn `Config` keeps the stock behaviour. `transport.install()` calls this.
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
                handover = handover_of(self.scope)
                if handover is not None:  # bytes before any 101: Hypercorn refuses (400)
                    handover.direct.decide(take=False)
                await original(self, event)
        elif isinstance(event, Request):
            if not config.websocket_compression:
                headers = [
                    (n, v) for n, v in event.headers if n.lower() != b"sec-websocket-extensions"
                ]
                event = dataclasses.replace(event, headers=headers)
            await original(self, event)
            if self.closed:
                return
            if self.app_put is not None:
                self.app_put = _AppInbox(self.app_put)
            sink = attach(self)  # Hypercorn's writes now queue behind started frames
            if config.direct_send:
                extensions: dict[str, object] = self.scope["extensions"]  # type: ignore[assignment]
                extensions[SCOPE_KEY] = sink
                if self.handshake.extensions is None:  # no deflate: frames are plain
                    max_message = config.websocket_max_message_size
                    setattr(self, _READER, wire.FrameReader(max_message))
                    if sink is not None:
                        sink.reading = True
                        key = self.handshake.key
                        if config.socket_takeover and key and event.http_version == "1.1":
                            extensions[HANDOVER_KEY] = Handover(sink, key, max_message)
        else:
            await original(self, event)

    original_app_send = WSStream.app_send

    async def app_send(self: WSStream, message: Any) -> None:
        handover = handover_of(self.scope) if isinstance(self.config, NoChatConfig) else None
        if handover is not None:
            if handover.direct.handover == TAKEN:
                return  # NoChat owns the socket and accepted it: Hypercorn's part is over
            handover.direct.decide(take=False)  # the app answers through ASGI instead
        inbox = self.app_put
        if isinstance(inbox, _AppInbox):
            if message is None:
                inbox.abandon()  # the app has finished: it will never read its queue
            elif message["type"] == "websocket.close":
                inbox.abandon(keep_disconnect=True)  # what the client says now is moot
        await original_app_send(self, message)

    handle._nochat_hooks = True  # type: ignore[attr-defined]
    WSStream.handle = handle  # type: ignore[method-assign]
    WSStream.app_send = app_send  # type: ignore[method-assign]


class _AppInbox:
    """The app's receive queue as Hypercorn feeds it: a put waits while the app reads
    (back-pressure on the client), and is dropped once the app has closed the socket
    (client messages; the disconnect still goes) or finished (everything).

    Hypercorn waits for ever on the full queue of an app that no longer reads: its
    reader then stops reading, a client that is still sending blocks and never reads
    the close frame stuck behind its full window, and the connection ends in a reset.
    """

    __slots__ = ("_put", "_state", "_waiting")

    _OPEN, _CLOSED, _DONE = 0, 1, 2

    def __init__(self, put: Callable[[Any], Awaitable[None]]) -> None:
        self._put = put
        self._state = self._OPEN
        self._waiting: dict[trio.CancelScope, bool] = {}  # scope → is a disconnect

    async def __call__(self, message: Any) -> None:
        disconnect = message["type"] == "websocket.disconnect"
        if self._state == self._DONE or (self._state == self._CLOSED and not disconnect):
            return
        with trio.CancelScope() as scope:
            self._waiting[scope] = disconnect
            try:
                await self._put(message)
            finally:
                del self._waiting[scope]

    def abandon(self, *, keep_disconnect: bool = False) -> None:
        """Drop what waits and what comes (but a disconnect, with `keep_disconnect`)."""
        self._state = max(self._state, self._CLOSED if keep_disconnect else self._DONE)
        for scope, disconnect in self._waiting.items():
            if not (disconnect and keep_disconnect):
                scope.cancel()


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
        stream.state = ASGIWebsocketState.CLOSED  # Hypercorn refuses the app's sends now
        frame = wire.close_frame(code, reason)
        if isinstance(direct, DirectSocket):
            # After the rest of a started frame, and the last frame on the socket.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await direct.send_close(frame)
        else:
            await stream.send(Data(stream_id=stream.stream_id, data=frame))
    await stream.send(StreamClosed(stream_id=stream.stream_id))


def sink_of(scope: Mapping[str, Any]) -> DirectSocket | None:
    """The DirectSocket the hooks put in a WebSocket scope (None: use ASGI sends)."""
    direct = scope.get("extensions", {}).get(SCOPE_KEY)
    return direct if isinstance(direct, DirectSocket) else None
