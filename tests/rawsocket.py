"""A WebSocket client for tests that can misbehave: `RawSocket` puts wsproto frames or
hand-made bytes on the wire and reports how the server ends the connection;
`raw_socket` opens one through the handshake. Shared by the abuse, RFC 6455 and
transport suites (it lives beside tests/support.py, which is big enough already)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from .abuse_cases import Frame, Wire
from .support import STEP_S, RunningServer

#: What a client reports when TCP ends without a close frame (RFC 6455 §7.1.5).
NO_CLOSE_FRAME = 1006
#: Events a reply is not: they may arrive at any time.
NOISE = frozenset({"ping", "presence", "typing", "message", "room"})


# ---- a WebSocket client that can misbehave ----------------------------------------------------


class Refused(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


class RawSocket:
    """A wsproto client that can also put hand-made bytes on the wire (e.g. invalid UTF-8).

    `recv` returns events (batches unpacked) and, when the server ends the connection,
    `{"close": code}` (NO_CLOSE_FRAME when TCP ended without a close frame).
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending: deque[dict[str, Any]] = deque()
        self._text: list[str] = []
        self._send_lock = trio.Lock()
        #: Payloads of the server's pongs, in order.
        self.pongs: list[bytes] = []

    async def handshake(
        self, host: str, target: str, headers: list[tuple[str, str]], subprotocols: list[str]
    ) -> None:
        request = Request(
            host=host,
            target=target,
            subprotocols=subprotocols,
            extra_headers=[(k.encode(), v.encode()) for k, v in headers],
        )
        await self._write(self.ws.send(request))
        status, body = 0, b""
        with trio.fail_after(STEP_S):
            while True:
                data = await self.stream.receive_some()
                if not data:
                    raise Refused(status, body)
                self.ws.receive_data(data)
                for event in self.ws.events():
                    if isinstance(event, AcceptConnection):
                        return
                    if isinstance(event, RejectConnection):
                        status = event.status_code
                        if not event.has_body:
                            raise Refused(status, body)
                    elif isinstance(event, RejectData):
                        body += event.data
                        if event.body_finished:
                            raise Refused(status, body)

    async def send(self, frame: Frame | Wire) -> None:
        if isinstance(frame, Wire):
            await self._write(frame.data)
        elif isinstance(frame, str):
            await self._write(self.ws.send(TextMessage(data=frame)))
        else:
            await self._write(self.ws.send(BytesMessage(data=frame)))

    async def send_json(self, **fields: Any) -> None:
        await self.send(json.dumps(fields))

    async def _write(self, data: bytes) -> None:
        # When the server has hung up, `recv` reports how.
        async with self._send_lock:
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self.stream.send_all(data)

    async def recv(self) -> dict[str, Any]:
        with trio.fail_after(STEP_S):
            while not self.pending:
                try:
                    data = await self.stream.receive_some()
                except trio.BrokenResourceError:
                    data = b""
                if not data:
                    self.pending.append({"close": NO_CLOSE_FRAME})
                    break
                self.ws.receive_data(data)
                for event in self.ws.events():
                    await self._on_event(event)
        return self.pending.popleft()

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, TextMessage):
            self._text.append(event.data)
            if event.message_finished:
                parsed = json.loads("".join(self._text))
                self._text.clear()
                self.pending.extend(parsed if isinstance(parsed, list) else [parsed])
        elif isinstance(event, CloseConnection):
            self.pending.append({"close": event.code})
            if self.ws.state is ConnectionState.REMOTE_CLOSING:
                await self._write(self.ws.send(event.response()))
        elif isinstance(event, Ping):
            await self._write(self.ws.send(event.response()))
        elif isinstance(event, Pong):
            self.pongs.append(bytes(event.payload))
        else:
            self.pending.append({"unexpected": repr(event)})

    async def reply(self) -> dict[str, Any]:
        """The next event that answers something (not a ping, presence, typing or message)."""
        while True:
            event = await self.recv()
            if event.get("type") not in NOISE:
                return event
            if event["type"] == "ping":
                await self.send_json(type="pong")

    async def aclose(self) -> None:
        with trio.move_on_after(STEP_S, shield=True):
            if self.ws.state is ConnectionState.OPEN:
                await self._write(self.ws.send(CloseConnection(code=1000)))
            await self.stream.aclose()


@asynccontextmanager
async def raw_socket(
    server: RunningServer,
    token: str | None,
    *,
    target: str = "/ws",
    headers: list[tuple[str, str]] | None = None,
    subprotocols: tuple[str, ...] = ("nochat.v1",),
) -> AsyncIterator[RawSocket]:
    """A RawSocket through the handshake (Refused when the server refuses it)."""
    extra = list(headers or [])
    if token:
        extra.append(("Authorization", f"Bearer {token}"))
    with trio.fail_after(STEP_S):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    sock = RawSocket(stream)
    try:
        await sock.handshake(f"127.0.0.1:{server.port}", target, extra, list(subprotocols))
        yield sock
    finally:
        await sock.aclose()
