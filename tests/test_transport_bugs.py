"""Transport bugs found against the real server, each reproduced over real sockets.

- frames interleaved after a partial write (a pong inside a half-sent frame);
- one connection's exception ending the whole process (the close sequence racing
  Hypercorn's EOF);
- a close after a flood arriving as a reset (the socket closed with unread input).
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypercorn.trio import serve as hypercorn_serve
from wsproto import ConnectionType, WSConnection
from wsproto.events import CloseConnection, Pong, Request, TextMessage

from nochat import transport
from nochat.app import build_services
from nochat.connection import Connection
from nochat.errors import CloseCode
from nochat.hub import CHUNK_MAX_CHARS
from nochat.server import hypercorn_config
from nochat.store import Session, User, now_ms
from nochat.transport import DirectSocket
from nochat.wire import OP_PONG, control_frame, text_frame

from .abuse_cases import PING, TEXT, Wire, frame
from .rawsocket import RawSocket, raw_socket
from .support import STEP_S, Api, RunningServer, make_settings, start_server, ws_connect
from .test_connection import FakeSocket

#: The client's receive buffer: small, so the server's writes stop part-way.
SMALL_RCVBUF = 4096


async def _open_small_buffer_stream(port: int) -> trio.SocketStream:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    with trio.fail_after(STEP_S):
        await sock.connect(("127.0.0.1", port))
    return trio.SocketStream(sock)


async def _handshake(
    stream: trio.SocketStream, port: int, token: str
) -> tuple[WSConnection, bytes]:
    """A wsproto client through the handshake; returns it and any bytes after the 101."""
    ws = WSConnection(ConnectionType.CLIENT)
    request = Request(
        host=f"127.0.0.1:{port}",
        target="/ws",
        subprotocols=["nochat.v1"],
        extra_headers=[(b"Authorization", f"Bearer {token}".encode())],
    )
    await stream.send_all(ws.send(request))
    head = b""
    with trio.fail_after(STEP_S):
        while b"\r\n\r\n" not in head:
            data = await stream.receive_some()
            assert data, "refused"
            head += data
    end = head.index(b"\r\n\r\n") + 4
    ws.receive_data(head[:end])
    (accepted,) = ws.events()
    assert type(accepted).__name__ == "AcceptConnection", accepted
    return ws, head[end:]


class SlowReader:
    """A client with a small receive buffer that joins `general` and then stops reading."""

    def __init__(self, stream: trio.SocketStream, ws: WSConnection) -> None:
        self.stream = stream
        self.ws = ws
        self.seqs: list[int] = []
        self.pongs: list[bytes] = []
        self.close: int | None = None
        self._text: list[str] = []

    @classmethod
    async def join(cls, server: RunningServer, token: str) -> SlowReader:
        stream = await _open_small_buffer_stream(server.port)
        ws, rest = await _handshake(stream, server.port, token)
        reader = cls(stream, ws)
        ws.receive_data(rest)
        await stream.send_all(ws.send(TextMessage(json.dumps({"type": "join", "room": "general"}))))
        with trio.fail_after(STEP_S):
            while not await reader._parse(until_joined=True):
                ws.receive_data(await stream.receive_some())
        return reader

    async def ping(self, payload: bytes) -> None:
        await self.stream.send_all(frame(PING, payload))

    async def _parse(self, *, until_joined: bool = False) -> bool:
        """Take in the events received so far; True once `joined` (or a close) came."""
        joined = False
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                self._text.append(event.data)
                if event.message_finished:
                    parsed: Any = json.loads("".join(self._text))
                    self._text.clear()
                    for item in parsed if isinstance(parsed, list) else [parsed]:
                        if item["type"] == "message":
                            self.seqs.append(item["seq"])
                        joined = joined or item["type"] == "joined"
            elif isinstance(event, Pong):
                self.pongs.append(bytes(event.payload))
            elif isinstance(event, CloseConnection):
                self.close = event.code
                return True
        return joined if until_joined else False

    async def read_all(self, messages: int, pings: int) -> None:
        """Read until every message and pong came (or the connection closed)."""
        with trio.fail_after(STEP_S):
            while len(self.seqs) < messages or len(self.pongs) < pings:
                data = await self.stream.receive_some()
                if not data:
                    self.close = -1
                    return
                self.ws.receive_data(data)
                if await self._parse():
                    return


TOTAL_MESSAGES = 400
PING_EVERY = 20


@pytest.mark.parametrize("round_", range(5))
async def test_transport_partial_write_is_never_interleaved(
    nursery: trio.Nursery, tmp_path: Path, round_: int
) -> None:
    """Clients that ping while their receive buffer is full see every frame whole: the
    pongs come between frames, never inside the one a partial write left half-sent."""
    # Outboxes large enough (in items and characters) that no slow reader is evicted.
    settings = make_settings(tmp_path / "data", outbox_size=100_000, outbox_bytes=64 * 2**20)
    server = await start_server(nursery, settings)
    api = Api(server.http)
    bob = await api.signup("bob")
    tokens = [(await api.signup(f"r{i}")).token for i in range(4)]
    async with AsyncExitStack() as stack:
        readers = []
        for token in tokens:
            reader = await SlowReader.join(server, token)
            stack.push_async_callback(reader.stream.aclose)
            readers.append(reader)
        pings = 0
        async with ws_connect(server, bob.token) as b:
            await b.join()
            for i in range(TOTAL_MESSAGES):
                await b.say("x" * 3900, client_id=f"m{i}")
                if i % PING_EVERY == 0:
                    for reader in readers:
                        await reader.ping(f"p{pings}".encode())
                    pings += 1
            await b.messages(TOTAL_MESSAGES)
        async with trio.open_nursery() as reading:
            for reader in readers:
                reading.start_soon(reader.read_all, TOTAL_MESSAGES, pings)
    for reader in readers:
        # wsproto fails a frame another one cut into with 1002 or 1007 (garbled text).
        assert reader.close is None, f"a server frame did not parse ({reader.close})"
        assert reader.seqs == list(range(1, TOTAL_MESSAGES + 1))
        assert reader.pongs == [f"p{i}".encode() for i in range(pings)]


# ---- one connection must never end the server -----------------------------------------------

#: Valid text, then a frame with an RSV bit (1002), then a ping, all in one TCP segment:
#: the close sequence races the app's reply and Hypercorn's EOF.
RACE = frame(TEXT, b'{"type": "pong"}') + frame(0x40 | TEXT, b"{}") + frame(PING, b"p")
RACE_ROUNDS = 1000
RACE_CLIENTS = 10


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The smallest ASGI app: a WebSocket echo (and a lifespan that says yes)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket" or (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": message["text"], "bytes": message["bytes"]})


@asynccontextmanager
async def serve_echo(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[int]:
    """`echo_app` served the way `nochat serve` serves NoChat (its config and hooks)."""
    transport.install()  # as `nochat serve` does (alone, no other test has yet)
    config = hypercorn_config(make_settings(tmp_path / "echo"))
    done = trio.Event()
    with trio.fail_after(STEP_S):
        binds = await nursery.start(
            partial(hypercorn_serve, echo_app, config, shutdown_trigger=done.wait)
        )
    try:
        yield int(binds[0].rsplit(":", 1)[1])
    finally:
        done.set()


async def _race(port: int, headers: list[tuple[str, str]], rounds: int) -> list[int]:
    """`rounds` connections, each sent RACE; the close code each one saw."""
    codes = []
    for _ in range(rounds):
        with trio.fail_after(STEP_S):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        sock = RawSocket(stream)
        try:
            await sock.handshake(f"127.0.0.1:{port}", "/ws", headers, ["nochat.v1"])
            await sock.send(Wire(RACE))
            while "close" not in (event := await sock.recv()):
                pass
            codes.append(event["close"])
        finally:
            await sock.aclose()
    return codes


async def _race_everywhere(port: int, headers: list[tuple[str, str]]) -> list[int]:
    codes: list[int] = []

    async def client() -> None:
        codes.extend(await _race(port, headers, RACE_ROUNDS // RACE_CLIENTS))

    with trio.fail_after(120):
        async with trio.open_nursery() as clients:
            for _ in range(RACE_CLIENTS):
                clients.start_soon(client)
    return codes


async def test_transport_close_race_never_ends_the_echo_server(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    async with serve_echo(nursery, tmp_path) as port:
        codes = await _race_everywhere(port, [])
        assert codes == [1002] * RACE_ROUNDS
        # Still serving: a well-behaved client is echoed.
        with trio.fail_after(STEP_S):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        sock = RawSocket(stream)
        try:
            await sock.handshake(f"127.0.0.1:{port}", "/ws", [], [])
            await sock.send_json(type="still", n=1)
            assert await sock.recv() == {"type": "still", "n": 1}
        finally:
            await sock.aclose()


async def test_transport_close_race_never_ends_the_nochat_server(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    # One user's sockets in quick succession: each is counted until the server has torn
    # it down, a moment after the client saw its close; the per-user cap is not the
    # subject here (tests/e2e/test_limits.py has it).
    settings = make_settings(tmp_path / "data", max_connections_per_user=RACE_ROUNDS)
    server = await start_server(nursery, settings)
    api = Api(server.http)
    ann = await api.signup("ann")
    codes = await _race_everywhere(server.port, [("Authorization", f"Bearer {ann.token}")])
    assert codes == [1002] * RACE_ROUNDS
    async with raw_socket(server, ann.token) as sock:
        await sock.send_json(type="join", room="general", ref="j")
        assert (await sock.reply())["type"] == "joined"


# ---- a close after a flood is a close, not a reset ----------------------------------------

FLOOD_FRAMES = 300
FLOOD_CLIENTS = 20


async def _how_tcp_ends(stream: trio.SocketStream) -> str:
    """ "eof" when the peer closes in order, "reset" on RST (after the close frame)."""
    with trio.fail_after(STEP_S):
        try:
            while await stream.receive_some():
                pass
        except trio.BrokenResourceError:
            return "reset"
    return "eof"


async def test_transport_flooder_sees_its_4029_close_frame(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """Clients that send 300 frames without reading are closed 4029, each seeing the close
    frame: the server drains their unread frames instead of resetting the connection."""
    settings = make_settings(tmp_path / "data", frame_rate_per_s=1.0, frame_burst=100)
    server = await start_server(nursery, settings)
    api = Api(server.http)
    users = [await api.signup(f"f{i}") for i in range(FLOOD_CLIENTS // 5)]
    garbage = b"{" + b" " * 1000  # bad_json: every frame gets an error reply
    codes: list[int] = []
    ends: list[str] = []

    async def flooder(token: str) -> None:
        # A small receive buffer: the server's replies back up, its close frame waits in
        # its send queue, and a reset would throw it away.
        sock = RawSocket(await _open_small_buffer_stream(server.port))
        headers = [("Authorization", f"Bearer {token}")]
        try:
            await sock.handshake(f"127.0.0.1:{server.port}", "/ws", headers, ["nochat.v1"])
            for _ in range(FLOOD_FRAMES):  # one write each, as a client's loop would
                await sock.send(Wire(frame(TEXT, garbage)))
            while "close" not in (event := await sock.recv()):
                pass
            codes.append(event["close"])
            # Then the server ends TCP in order (FIN, not RST), once the client's close
            # frame (sent by `recv`) has told it the client is done.
            ends.append(await _how_tcp_ends(sock.stream))
        finally:
            await sock.aclose()

    with trio.fail_after(3 * STEP_S):
        async with trio.open_nursery() as clients:
            for i in range(FLOOD_CLIENTS):
                clients.start_soon(flooder, users[i % len(users)].token)
    assert codes == [4029] * FLOOD_CLIENTS
    assert ends == ["eof"] * FLOOD_CLIENTS


async def test_transport_direct_socket_writes_the_rest_of_a_started_frame_first() -> None:
    """The invariant under the e2e test above, on a socket pair: a write that comes while
    a frame is half out (here Hypercorn's pong) goes after its rest, the rest is written
    once, whoever comes first, and the peer reads exactly the frames one after another."""
    ours, theirs = trio.socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_RCVBUF)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    big, pong, after = text_frame("x" * 200_000), control_frame(OP_PONG, b"p"), text_frame("a")
    received = bytearray()
    async with trio.SocketStream(ours) as stream, trio.SocketStream(theirs) as peer:
        direct = DirectSocket(trio.Lock(), stream)
        written = direct.send_nowait(big)
        assert 0 < written < len(big)
        assert direct.send_nowait(after) == 0  # nothing starts while the rest is owed

        async def read_to_eof() -> None:
            while data := await peer.receive_some():
                received.extend(data)

        with trio.fail_after(STEP_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_to_eof)
                await direct.send_raw(pong)  # Hypercorn's write: the rest goes first
                await direct.send_queued(big[written:])  # the write pump's copy: not again
                await direct.send_all(after)
                await stream.send_eof()
    assert bytes(received) == big + pong + after


async def test_transport_direct_socket_writes_nothing_while_a_writer_holds_the_lock() -> None:
    """send_nowait checks the send lock instead of taking it (no acquire/release per
    frame): while another writer holds it, or waits for it, nothing is written."""
    ours, theirs = trio.socket.socketpair()
    async with trio.SocketStream(ours) as stream, trio.SocketStream(theirs) as peer:
        lock = trio.Lock()
        direct = DirectSocket(lock, stream)
        frame = text_frame("a")
        async with lock:
            assert direct.send_nowait(frame) == 0
        assert direct.send_nowait(frame) == len(frame)
        with trio.fail_after(STEP_S):
            assert await peer.receive_some() == frame


async def test_transport_a_started_frames_rest_is_on_the_byte_account_once(
    tmp_path: Path,
) -> None:
    """Main's byte budget with the rest of a started frame: the hub counts the rest it
    queues (the placeholder) once, the write pump takes it away once, after the rest is
    out, and not again for the frames behind it (a real DirectSocket on a socket pair,
    the real hub and write pump)."""
    svc = build_services(make_settings(tmp_path / "d"))
    ours, theirs = trio.socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_RCVBUF)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    big = json.dumps({"type": "x", "text": "b" * CHUNK_MAX_CHARS})  # flushed at once
    behind = [json.dumps({"type": "y", "text": c * 100_000}) for c in "cd"]
    async with trio.SocketStream(ours) as stream, trio.SocketStream(theirs) as peer:
        direct = DirectSocket(trio.Lock(), stream)
        session = Session("s1", 1, now_ms() + 10**9)
        conn = Connection(svc, User(1, "ann"), session, FakeSocket(), direct)
        sub = conn.sub
        sub.direct = direct  # as after accept
        svc.hub.send_to(sub, big)
        frame_big = text_frame(big)
        rest = sub.queued_chars
        assert 0 < rest < len(frame_big) and sub.busy  # partly written: the rest is queued
        for event in behind:
            svc.hub.send_to(sub, event)
        queued = rest + sum(map(len, behind))
        assert sub.queued_chars == queued

        async def read(n: int) -> bytes:
            got = bytearray()
            while len(got) < n:
                data = await peer.receive_some(n - len(got))
                assert data
                got.extend(data)
            return bytes(got)

        with trio.fail_after(STEP_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.write_pump, nursery.cancel_scope)
                try:
                    await trio.testing.wait_all_tasks_blocked()
                    assert sub.queued_chars == queued  # the rest is being written: still owed
                    assert await read(len(frame_big)) == frame_big
                    await trio.testing.wait_all_tasks_blocked()  # the pump blocks on `behind`
                    assert sub.queued_chars == queued - rest  # the rest taken away, once
                    frame_behind = text_frame("[" + ",".join(behind) + "]")
                    assert await read(len(frame_behind)) == frame_behind
                    await trio.testing.wait_all_tasks_blocked()
                    assert (sub.queued_chars, sub.busy) == (0, False)
                    sub.close(CloseCode.NORMAL)  # the pump sees the outbox close and returns
                finally:
                    peer.socket.close()  # a failure must not leave the pump's shielded write
