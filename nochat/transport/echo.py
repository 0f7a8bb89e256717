"""A WebSocket echo app served through NoChat's transport, for conformance runs and tests.

`/ws` takes its sockets over from Hypercorn where it can (takeover.py: NoChat's reader,
the direct writer) and otherwise reads with the direct reader and writes with the direct
writer through Hypercorn; this app does the same with nothing else in the way (no auth,
no hub), so a fuzzer such as Autobahn|Testsuite sees exactly the transport. Under a
plain Hypercorn `Config` (no hooks) it falls back to ASGI sends: the same app on stock
Hypercorn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config

from .. import wire
from ..server import hypercorn_config
from ..settings import Settings
from .hypercorn import sink_of
from .takeover import Disconnected, SocketHost, TakenSocket, handover_of

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: Autobahn's largest messages (9.1.6, 9.2.6) are 16 MiB; the echo takes them whole.
ECHO_MAX_MESSAGE_BYTES = 16 * 1024 * 1024 + 1024


class EchoApp:
    """ASGI: every WebSocket message comes back as it came; HTTP requests get 404. Its
    lifespan runs the `SocketHost` taken-over sockets are echoed in."""

    def __init__(self) -> None:
        self.host = SocketHost()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async with trio.open_nursery() as nursery:
                await nursery.start(self.host.run)
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                nursery.cancel_scope.cancel()
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "http":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        elif scope["type"] == "websocket":
            await self._echo(scope, receive, send)

    async def _echo(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        handover = handover_of(scope) if self.host.running else None
        taken = await handover.take_over(None) if handover is not None else None
        if taken is not None:
            echo = partial(_echo_taken, taken)
            if not self.host.adopt(taken, echo):
                await self.host.serve(taken, echo)
            return
        await send({"type": "websocket.accept"})
        direct = sink_of(scope)
        while (message := await receive())["type"] == "websocket.receive":
            text, data = message.get("text"), message.get("bytes")
            if direct is None:
                await send({"type": "websocket.send", "text": text, "bytes": data})
                continue
            frame = wire.text_frame(text) if text is not None else wire.binary_frame(data or b"")
            try:
                await direct.send_all(frame)
            except OSError:
                return  # closing or gone: Hypercorn ends the stream


async def _echo_taken(socket: TakenSocket) -> None:
    """Echo on a taken-over socket until it ends (the host then finishes it)."""
    while True:
        try:
            message = await socket.receive()
        except Disconnected:
            return
        frame = wire.text_frame(message) if isinstance(message, str) else wire.binary_frame(message)
        try:
            await socket.direct.send_all(frame)
        except OSError:
            return  # closing or gone


def echo_config(
    host: str, port: int, *, compression: bool, stock: bool = False, takeover: bool = True
) -> Config:
    """The Hypercorn config `nochat serve` would build (`server.hypercorn_config`), with
    permessage-deflate on or off and the takeover on or off; `stock` is a plain Hypercorn
    `Config` (no NoChat hooks) with the same limits, for comparison."""
    settings = Settings(
        host=host, port=port, websocket_compression=compression, socket_takeover=takeover
    )
    config = Config() if stock else hypercorn_config(settings)
    config.bind = [f"{host}:{port}"]
    config.websocket_max_message_size = ECHO_MAX_MESSAGE_BYTES
    config.websocket_ping_interval = None
    config.accesslog = None
    return config
