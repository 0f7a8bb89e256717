"""The echo app Autobahn fuzzes (`nox -s conformance`) goes through the transport it is
meant to test: taken over by NoChat on its config (NoChat's reader, the direct writer),
the direct reader and writer under Hypercorn with the takeover off, ASGI sends on stock
Hypercorn."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import trio
import trio_websocket
from hypercorn.trio import serve as hypercorn_serve

from nochat import transport
from nochat.transport import DirectSocket, sink_of
from nochat.transport.direct import NONE, TAKEN
from nochat.transport.echo import EchoApp, echo_config

from .support import STEP_S


@pytest.mark.parametrize("path", ["takeover", "hooked", "stock"])
async def test_echo_app_echoes_through_the_transport(nursery: trio.Nursery, path: str) -> None:
    transport.install()
    scopes: list[dict[str, Any]] = []
    echo = EchoApp()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await echo(scope, receive, send)

    stop = trio.Event()
    stock, takeover = path == "stock", path == "takeover"
    config = echo_config("127.0.0.1", 0, compression=False, stock=stock, takeover=takeover)
    with trio.fail_after(STEP_S):
        binds = await nursery.start(
            partial(hypercorn_serve, app, config, shutdown_trigger=stop.wait)
        )
        port = int(binds[0].rsplit(":", 1)[1])
        big = "é" * 70_000  # a 64-bit length frame both ways
        async with trio_websocket.open_websocket("127.0.0.1", port, "/", use_ssl=False) as ws:
            for message in ("hi", b"\x00\xff", big, b"x" * 200_000):
                await ws.send_message(message)
                assert await ws.get_message() == message
            assert echo.host.count == (1 if path == "takeover" else 0)
        stop.set()
    (scope,) = [s for s in scopes if s["type"] == "websocket"]
    direct = sink_of(scope)
    if path == "stock":
        assert direct is None
    else:
        assert isinstance(direct, DirectSocket) and direct.reading
        assert direct.handover == (TAKEN if path == "takeover" else NONE)
