"""The takeover (nochat/transport/takeover.py): once accepted, a plain-TCP WebSocket is
NoChat's, and nothing Hypercorn made for the connection stays alive; where the takeover
is not sound (deflate, the setting off) the connection stays on Hypercorn's path.

The objects are counted with the collector (`gc.get_objects`), in this process: the
server runs in it, and the test's own clients use no Hypercorn class.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
import trio
from hypercorn.protocol.h11 import H11Protocol, H11WSConnection
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.trio.tcp_server import TCPServer
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from nochat.transport import DirectSocket, SocketHost, TakenSocket
from nochat.transport.direct import NONE, TAKEN

from .abuse_cases import PING, Wire, frame
from .rawsocket import RawSocket, raw_socket
from .support import STEP_S, Api, RunningServer, WsClient, make_settings, start_server, ws_connect

SOCKETS = 4
#: Hypercorn's per-connection objects (one of each per WebSocket it serves).
HYPERCORN = (TCPServer, H11Protocol, WSStream)


def _alive(kind: type) -> int:
    gc.collect()
    return sum(isinstance(o, kind) for o in gc.get_objects())


def _taken(server: RunningServer) -> list[TakenSocket]:
    conns = [c for cs in server.services.connections.by_session.values() for c in cs]
    return [c.socket for c in conns if isinstance(c.socket, TakenSocket)]


@asynccontextmanager
async def _joined(server: RunningServer, token: str, n: int) -> AsyncIterator[list[WsClient]]:
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(ws_connect(server, token)) for _ in range(n)]
        for client in clients:
            await client.join()
        yield clients


@pytest.mark.parametrize("takeover", [True, False], ids=["taken-over", "hypercorn"])
async def test_takeover_releases_hypercorns_objects_of_live_connections(
    nursery: trio.Nursery, tmp_path: Path, takeover: bool
) -> None:
    settings = make_settings(tmp_path / "d", socket_takeover=takeover)
    server = await start_server(nursery, settings)
    ann = await Api(server.http).signup("ann")
    async with _joined(server, ann.token, SOCKETS) as clients:
        await clients[0].say("after the takeover")
        for client in clients:
            (got,) = await client.messages(1)
            assert got["text"] == "after the takeover"
        expected = 0 if takeover else SOCKETS
        for kind in HYPERCORN:
            assert _alive(kind) == expected, kind.__name__
        assert server.services.sockets.count == len(_taken(server)) == SOCKETS - expected
        for taken in _taken(server):
            assert taken.direct.handover == TAKEN


async def test_takeover_frees_hypercorns_objects_without_the_collector(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """Hypercorn's objects form cycles (TCPServer ↔ its protocol ↔ the stream): left to
    the collector, every connect would leave ~50 of them for it to find. (Only the
    WebSocket ones are looked for: the sign-up's HTTP connection may be closing still.)"""
    server = await start_server(nursery, make_settings(tmp_path / "d"))
    ann = await Api(server.http).signup("ann")
    gc.collect()
    gc.disable()
    try:
        async with _joined(server, ann.token, SOCKETS):
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            left = [o for o in gc.garbage if isinstance(o, (WSStream, H11WSConnection))]
            gc.set_debug(0)
            gc.garbage.clear()
            assert left == []
    finally:
        gc.set_debug(0)
        gc.enable()


async def test_takeover_keeps_pings_and_close_codes(server: RunningServer, api: Api) -> None:
    ann = await api.signup("ann")
    async with raw_socket(server, ann.token) as sock:
        await sock.send_json(type="join", room="general", ref="j")
        assert (await sock.reply())["ref"] == "j"
        assert len(_taken(server)) == 1
        await _ping(sock, b"still here")
        await sock.send(b"\xff")  # a binary frame: an error event, the socket stays open
        assert (await sock.reply())["code"] == "unsupported_frame"
        await sock.send("{")
        assert (await sock.reply())["code"] == "bad_json"


async def _ping(sock: RawSocket, payload: bytes) -> None:
    await sock.send(Wire(frame(PING, payload)))
    await sock.send_json(type="join", room="general", ref="p")
    assert (await sock.reply())["ref"] == "p"
    assert sock.pongs[-1] == payload


async def test_takeover_shutdown_closes_taken_sockets_with_1012(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await start_server(nursery, make_settings(tmp_path / "d"))
    ann = await Api(server.http).signup("ann")
    async with _joined(server, ann.token, SOCKETS) as clients:
        assert server.services.sockets.count == SOCKETS
        codes: list[int] = []
        async with trio.open_nursery() as closing:
            for client in clients:

                async def closed(client: WsClient = client) -> None:
                    codes.append(await client.closed())

                closing.start_soon(closed)
            await server.stop()
    assert codes == [1012] * SOCKETS
    assert server.services.sockets.count == 0
    assert not server.services.sockets.running


async def _deflate_client(server: RunningServer, token: str) -> tuple[trio.SocketStream, bool]:
    """A wsproto client offering permessage-deflate that joins `general`; its stream and
    whether the server accepted deflate."""
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    ws = WSConnection(ConnectionType.CLIENT)
    request = Request(
        host=f"127.0.0.1:{server.port}",
        target="/ws",
        subprotocols=["nochat.v1"],
        extensions=[PerMessageDeflate()],
        extra_headers=[(b"Authorization", f"Bearer {token}".encode())],
    )
    await stream.send_all(ws.send(request))
    deflate, joined = None, False
    with trio.fail_after(STEP_S):
        while not joined:
            ws.receive_data(await stream.receive_some())
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    deflate = bool(event.extensions)
                    await stream.send_all(ws.send(TextMessage('{"type":"join","room":"general"}')))
                elif isinstance(event, TextMessage):
                    joined = joined or '"joined"' in event.data
    assert deflate is not None
    return stream, deflate


@pytest.mark.parametrize("compression", [True, False], ids=["deflate", "offer-refused"])
async def test_takeover_stands_aside_when_deflate_is_negotiated(
    nursery: trio.Nursery, tmp_path: Path, compression: bool
) -> None:
    """A client offering permessage-deflate (every browser) is taken over unless the server
    accepts the offer (NOCHAT_WEBSOCKET_COMPRESSION): NoChat's reader reads plain frames."""
    settings = make_settings(tmp_path / "d", websocket_compression=compression)
    server = await start_server(nursery, settings)
    ann = await Api(server.http).signup("ann")
    stream, deflate = await _deflate_client(server, ann.token)
    async with stream:
        assert deflate is compression
        (conns,) = server.services.connections.by_session.values()
        (conn,) = conns
        assert isinstance(conn.socket, TakenSocket) is not compression
        direct = conn.sub.direct
        assert isinstance(direct, DirectSocket)
        assert direct.handover == (NONE if compression else TAKEN)


async def test_takeover_host_that_has_stopped_adopts_nothing() -> None:
    """At shutdown the host may stop while a handshake is being taken over: `adopt`
    says so and the caller serves the socket itself (ws.py), nothing is dropped."""
    host = SocketHost()
    ran: list[str] = []

    async def serve() -> None:
        ran.append("served")

    assert not host.running
    assert host.adopt(None, serve) is False  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(host.run)
        assert host.running
        nursery.cancel_scope.cancel()
    assert not host.running
    assert ran == []


async def test_takeover_not_for_a_handshake_hypercorn_refused(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """A client that sends a frame with its request, before any 101, gets Hypercorn's 400;
    NoChat must not then take that socket over and answer 101 after the 400. (Hypercorn
    tells the app nothing of it: the app's connection ends at its first-frame timeout.)"""
    settings = make_settings(tmp_path / "d", first_frame_timeout_s=0.2)
    server = await start_server(nursery, settings)
    ann = await Api(server.http).signup("ann")
    request = (
        "GET /ws HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: nochat.v1\r\n"
        f"Authorization: Bearer {ann.token}\r\n\r\n"
    ).encode()
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        await stream.send_all(request + frame(0x1, b'{"type":"join","room":"general"}'))
        got = b""
        with trio.fail_after(STEP_S):
            while b"\r\n\r\n" not in got:
                got += await stream.receive_some()
            await stream.send_eof()  # then whoever reads the socket sees its end and closes
            while data := await stream.receive_some():
                got += data
    assert got.startswith(b"HTTP/1.1 400")
    assert b"101 Switching Protocols" not in got
    assert server.services.sockets.count == 0
