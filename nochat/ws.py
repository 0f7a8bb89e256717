"""The /ws endpoint, served at the ASGI level: authenticate the handshake (refusing
before accept), then hand the socket to a `Connection`: taken over from Hypercorn and
run in NoChat's own `SocketHost` where the transport can (plain TCP, no deflate:
nochat/transport/takeover.py), else in this ASGI task through ASGI messages.

Everything else is the Quart-Trio app; `NoChatApp` routes the one WebSocket path here.
Quart's WebSocket layer gives each socket two more tasks in a nursery, another memory
channel, a `Headers` copy of the handshake and request contexts, and a hop through
that channel for every frame; the endpoint uses none of it (measured: see
docs/BENCHMARKS.md, "Idle connections"). ASGI is still the only interface to Hypercorn.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, WebsocketScope
from werkzeug.http import parse_cookie

from . import logs, protocol, transport
from .auth import SESSION_COOKIE, bearer_from_header, origin_allowed
from .connection import Connection
from .errors import AuthError, Forbidden, NoChatError, Unavailable
from .http_api import error_parts
from .transport import Disconnected

if TYPE_CHECKING:
    from .services import Services

log = logging.getLogger(__name__)

PATH = "/ws"


class AsgiSocket:
    """The `connection.Socket` a Connection talks through: ASGI messages, nothing more."""

    __slots__ = ("_receive", "_send")

    def __init__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        self._receive = receive
        self._send = send

    async def receive(self) -> str | bytes:
        """The next message's payload; raises Disconnected when the client has gone."""
        message: Any = await self._receive()
        if message["type"] != "websocket.receive":
            raise Disconnected
        text = message.get("text")
        if text is not None:
            return cast(str, text)
        return cast(bytes, message.get("bytes") or b"")

    async def accept(self, subprotocol: str | None) -> None:
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": []})

    async def send(self, data: str) -> None:
        await self._send({"type": "websocket.send", "text": data, "bytes": None})

    async def close(self, code: int, reason: str = "") -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def reject(self, exc: NoChatError) -> None:
        """Answer the handshake with an HTTP error and a JSON body, like the REST API."""
        status, headers, body = error_parts(exc)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        raw.append((b"content-length", str(len(body)).encode()))
        await self._send(
            {"type": "websocket.http.response.start", "status": status, "headers": raw}
        )
        await self._send({"type": "websocket.http.response.body", "body": body, "more_body": False})


async def serve_websocket(
    svc: Services, scope: WebsocketScope, receive: ASGIReceiveCallable, send: ASGISendCallable
) -> None:
    logs.connection_id.set(logs.new_id("c"))  # this task's and its children's log lines
    socket = AsgiSocket(receive, send)
    first = await receive()
    if first["type"] != "websocket.connect":
        return  # gone before the handshake was looked at
    headers = _headers(scope)
    offered = list(scope.get("subprotocols") or ())
    try:
        if svc.drain.shutting_down:
            raise Unavailable("the server is shutting down")
        token = _credentials(headers, offered, svc)
        user, session = await svc.auth.authenticate(token)
        # No await from here until Connection.open registers the socket: a logout either
        # ran before authenticate's revocation check (refused above) or finds the socket
        # registered when it closes its session's sockets (4001).
        svc.admission.admit(user)  # caps: 429 per user, 503 server-wide; no await until registered
    except NoChatError as exc:
        svc.telemetry.refused(exc, "ws")
        await socket.reject(exc)
        return
    subprotocol = protocol.SUBPROTOCOL if protocol.SUBPROTOCOL in offered else None
    direct = transport.sink_of(scope)
    client = scope.get("client")
    address = svc.addresses.of(client[0] if client else None, headers.get("x-forwarded-for"))
    # The handshake headers would stay alive with the scope as long as the socket does
    # (~1 KiB and a dozen tracked objects per connection); nothing reads them again.
    scope["headers"] = []
    del headers, first
    conn = Connection(svc, user, session, socket, direct, address)
    handover = transport.handover_of(scope) if svc.sockets.running else None
    del scope

    async def accept() -> transport.TakenSocket | None:
        if handover is not None and (taken := await handover.take_over(subprotocol)):
            return taken
        await socket.accept(subprotocol)
        return None

    if not await conn.open(accept):
        return
    log.debug("socket of %s accepted", user.name)  # its end: Connection.run
    if isinstance(conn.socket, transport.TakenSocket):
        # NoChat's task from here on; this ASGI task ends, and with it Hypercorn's
        # objects for the connection (unless the host stopped meanwhile: shutdown).
        if not svc.sockets.adopt(conn.socket, conn.run):
            await svc.sockets.serve(conn.socket, conn.run)
        return
    await conn.run()


def _headers(scope: WebsocketScope) -> dict[str, str]:
    """The handshake headers by lower-case name; repeated ones joined as HTTP allows."""
    out: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in out:
            out[name] += ("; " if name == "cookie" else ", ") + value
        else:
            out[name] = value
    return out


def _credentials(headers: Mapping[str, str], offered: list[str], svc: Services) -> str:
    """The handshake's token: bearer header, then `bearer.` subprotocol, then cookie + Origin."""
    token = bearer_from_header(headers.get("authorization"))
    if token:
        return token
    for name in offered:
        if name.startswith(protocol.BEARER_SUBPROTOCOL_PREFIX):
            return name[len(protocol.BEARER_SUBPROTOCOL_PREFIX) :]
    cookie = parse_cookie(headers.get("cookie", "")).get(SESSION_COOKIE)
    if cookie:
        if not origin_allowed(
            headers.get("origin"), headers.get("host", ""), svc.settings.allowed_origins
        ):
            raise Forbidden("cookie authentication needs an allowed Origin", code="bad_origin")
        return cookie
    raise AuthError("no credentials")
