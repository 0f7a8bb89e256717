"""Serving: Hypercorn's trio worker with NoChat's sockets, limits and graceful shutdown."""

from __future__ import annotations

import dataclasses
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import cast

import trio
from hypercorn.config import Config, Sockets
from hypercorn.protocol.events import Data, Event, Request, StreamClosed
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from hypercorn.trio import serve as hypercorn_serve
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import TrioSingleTask
from hypercorn.typing import TaskGroup
from quart_trio import QuartTrio

from . import wire
from .app import create_app
from .datadir import DataDirLock, check_database
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
            if config.direct_send and not self.closed:
                extensions: dict[str, object] = self.scope["extensions"]  # type: ignore[assignment]
                extensions[wire.SCOPE_KEY] = wire.attach(self)
                if self.handshake.extensions is None:  # no deflate: frames are plain
                    setattr(self, _READER, wire.FrameReader(config.websocket_max_message_size))
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
    direct = extensions.get(wire.SCOPE_KEY)
    if isinstance(direct, wire.DirectSocket):
        direct.shut()  # nothing may follow the close frame
    if stream.state == ASGIWebsocketState.CONNECTED:
        stream.state = ASGIWebsocketState.CLOSED
        frame = wire.close_frame(code, reason)
        await stream.send(Data(stream_id=stream.stream_id, data=frame))
    await stream.send(StreamClosed(stream_id=stream.stream_id))


class _IdleTask(TrioSingleTask):
    """A connection's keep-alive timer that survives the request that started it.

    Hypercorn restarts the timer (`TCPServer._idle_timeout`, which also closes the
    connection at shutdown) from the task that sent the response, after a lock and with
    `nursery.start`: two checkpoints. Quart-Trio cancels that task's nursery as soon as
    the response is out, so the restart was often cancelled at one of them, and the
    keep-alive connection was left with no timer at all: an idle browser connection
    neither timed out nor closed at shutdown, and SIGTERM waited out the whole grace
    period (5.04 s instead of 0.04 s). This restart has no checkpoint (so no lock is
    needed) and starts the timer with `start_soon` under the connection's own nursery.
    """

    async def restart(self, task_group: TaskGroup, action: Callable[[], Awaitable[None]]) -> None:
        if self._handle is not None:
            self._handle.cancel()
        scope = self._handle = trio.CancelScope()
        task_group._nursery.start_soon(_run_in_scope, scope, action)  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None


async def _run_in_scope(scope: trio.CancelScope, action: Callable[[], Awaitable[None]]) -> None:
    with scope:
        await action()


def _install_idle_task() -> None:
    """Give every TCPServer whose config is a NoChatConfig an `_IdleTask` (once per process)."""
    if getattr(TCPServer.__init__, "_nochat_hooks", False):
        return
    original = TCPServer.__init__

    def init(self: TCPServer, app: object, config: Config, *args: object) -> None:
        original(self, app, config, *args)  # type: ignore[arg-type]
        if isinstance(config, NoChatConfig):
            self.idle_task = _IdleTask()

    init._nochat_hooks = True  # type: ignore[attr-defined]
    TCPServer.__init__ = init  # type: ignore[method-assign, assignment]


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
    _install_idle_task()
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

    Start-up takes the data directory's lock (held until this returns) and refuses a
    damaged database (nochat/datadir.py), both before anything listens. Shutdown order:
    refuse new sockets, close every connection with 1012 and wait for
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

    with DataDirLock(settings.data_dir):
        await trio.to_thread.run_sync(check_database, settings.db_path)
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
