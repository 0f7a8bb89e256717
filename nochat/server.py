"""Serving: Hypercorn's trio worker with NoChat's sockets, limits and graceful shutdown."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any, cast

import trio
from hypercorn.config import Config, Sockets
from hypercorn.events import Closed, RawData
from hypercorn.events import Event as ConnectionEvent
from hypercorn.protocol.events import Data, Event, Request, StreamClosed
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from hypercorn.trio import serve as hypercorn_serve
from hypercorn.trio.tcp_server import TCPServer
from quart_trio import QuartTrio

from . import wire
from .app import create_app
from .services import Services
from .settings import Settings

log = logging.getLogger(__name__)

#: Where a WSStream NoChat reads itself keeps its `wire.FrameReader`.
_READER = "_nochat_reader"


def _install_stream_hooks() -> None:
    """Two things Hypercorn has no setting for, for streams whose config is a NoChatConfig.

    - `websocket_compression = False` refuses permessage-deflate: Hypercorn accepts it
      whenever a client offers it (every browser does), and each compressing connection
      keeps zlib state of a few hundred KiB. The offer is dropped before Hypercorn's
      handshake reads it.
    - `direct_send = True` puts a `wire.DirectSocket` for the connection in the ASGI
      scope's extensions, for the hub's fast send path.

    `WSStream.handle` is wrapped once per process; a plain Hypercorn `Config` keeps the
    stock behaviour.
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
            if self.closed:
                return
            if self.app_put is not None:
                self.app_put = _AppInbox(self.app_put)
            direct = wire.attach(self)  # Hypercorn's writes now queue behind started frames
            if config.direct_send:
                extensions: dict[str, object] = self.scope["extensions"]  # type: ignore[assignment]
                extensions[wire.SCOPE_KEY] = direct
                if self.handshake.extensions is None:  # no deflate: frames are plain
                    setattr(self, _READER, wire.FrameReader(config.websocket_max_message_size))
        else:
            await original(self, event)

    original_app_send = WSStream.app_send

    async def app_send(self: WSStream, message: Any) -> None:
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
    _install_connection_hooks()


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


def _install_connection_hooks() -> None:
    """Hypercorn's TCP connection, for configs that are a NoChatConfig:

    - once a WebSocket is attached (`wire.attach`), every write, the EOF and the close
      go through its `wire.DirectSocket`, in order under the send lock: Hypercorn's
      `send_eof` takes no lock and collided with other writes (trio.BusyResourceError),
      and its writes could land inside a frame the hub had half written;
    - the close lingers (`DirectSocket.finish`), reading until the client closes;
    - an exception of one connection ends that connection, logged, never the server
      (Hypercorn runs connections in the server's own nursery).
    """
    original_run = TCPServer.run
    original_read = TCPServer._read_data
    original_send = TCPServer.protocol_send

    async def run(self: TCPServer) -> None:
        if not isinstance(self.config, NoChatConfig):
            await original_run(self)
            return
        try:
            await original_run(self)
        except* Exception:
            log.exception("a connection failed")

    async def read_data(self: TCPServer) -> None:
        direct = wire.socket_of(self) if isinstance(self.config, NoChatConfig) else None
        if direct is None:
            await original_read(self)
            return
        direct.reader = trio.lowlevel.current_task()
        try:
            await original_read(self)
        finally:
            direct.reader_done.set()

    async def protocol_send(self: TCPServer, event: ConnectionEvent) -> None:
        direct = wire.socket_of(self) if isinstance(self.config, NoChatConfig) else None
        if direct is None or not direct.routes_writes:
            await original_send(self, event)
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

    TCPServer.run = run  # type: ignore[method-assign]
    TCPServer._read_data = read_data  # type: ignore[method-assign]
    TCPServer.protocol_send = protocol_send  # type: ignore[method-assign]


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
    direct = extensions.get(wire.SCOPE_KEY)
    if isinstance(direct, wire.DirectSocket):
        direct.shut()  # nothing may follow the close frame
    if stream.state == ASGIWebsocketState.CONNECTED:
        stream.state = ASGIWebsocketState.CLOSED  # Hypercorn refuses the app's sends now
        frame = wire.close_frame(code, reason)
        if isinstance(direct, wire.DirectSocket):
            # After the rest of a started frame, and the last frame on the socket.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await direct.send_close(frame)
        else:
            await stream.send(Data(stream_id=stream.stream_id, data=frame))
    await stream.send(StreamClosed(stream_id=stream.stream_id))


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


def hypercorn_config(settings: Settings) -> NoChatConfig:
    config = NoChatConfig()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.tcp_user_timeout_ms = int(settings.tcp_user_timeout_s * 1000)
    config.backlog = settings.listen_backlog
    config.websocket_max_message_size = settings.max_frame_bytes
    config.websocket_ping_interval = None  # keepalive is the app's (it checks answers)
    config.websocket_compression = settings.websocket_compression
    config.direct_send = settings.direct_send
    _install_stream_hooks()
    config.graceful_timeout = settings.shutdown_grace_s
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def app_services(app: QuartTrio) -> Services:
    svc = app.extensions["nochat"]
    assert isinstance(svc, Services)
    return svc


async def serve(
    settings: Settings,
    *,
    app: QuartTrio | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve NoChat until SIGINT/SIGTERM (or `shutdown_trigger` returns).

    Shutdown order: refuse new sockets, close every connection with 1012 and wait for
    them (at most shutdown_grace_s), stop Hypercorn, then commit what the store still
    holds. `task_status.started` receives the bound URLs (port 0 becomes a real port).
    `app` defaults to `create_app(settings)`.
    """
    app = app or create_app(settings)
    svc = app_services(app)
    trigger = shutdown_trigger or _wait_for_signal

    async def shutdown() -> None:
        await trigger()
        log.info("shutting down: closing %d connections", svc.hub.connection_count())
        svc.begin_shutdown()
        with trio.move_on_after(settings.shutdown_grace_s):
            await svc.drained.wait()

    await hypercorn_serve(
        app,
        hypercorn_config(settings),
        shutdown_trigger=shutdown,
        task_status=task_status,
    )


async def _wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s", signal.Signals(signum).name)
            return
