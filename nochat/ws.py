"""The /ws route: authenticate the handshake (refusing before accept), then hand off."""

from __future__ import annotations

import logging
from functools import partial
from typing import cast

from quart import Blueprint, Response, websocket

from . import protocol, wire
from .auth import SESSION_COOKIE, bearer_from_header, origin_allowed
from .connection import Connection, Socket
from .errors import AuthError, Forbidden, NoChatError, Unavailable
from .http_api import error_response, services

log = logging.getLogger(__name__)

blueprint = Blueprint("ws", __name__)


@blueprint.websocket("/ws")
async def ws_endpoint() -> Response | None:
    svc = services()
    try:
        if svc.shutting_down:
            raise Unavailable("the server is shutting down")
        token = _credentials()
        user, session = await svc.auth.authenticate(token)
        svc.admit(user)  # caps: 429 per user, 503 server-wide; no await until registered
    except NoChatError as exc:
        return error_response(exc)
    offered = websocket.requested_subprotocols
    accept = partial(
        websocket.accept,
        subprotocol=protocol.SUBPROTOCOL if protocol.SUBPROTOCOL in offered else None,
    )
    direct = websocket.scope.get("extensions", {}).get(wire.SCOPE_KEY)
    if not isinstance(direct, wire.DirectSocket):
        direct = None
    conn = Connection(svc, user, session, _current_websocket(), direct)
    await conn.serve(accept)
    return None


def _current_websocket() -> Socket:
    """The real Websocket behind Quart's context-local proxy (tasks outlive no context)."""
    return cast(Socket, websocket._get_current_object())  # type: ignore[attr-defined]


def _credentials() -> str:
    """The handshake's token: bearer header, then `bearer.` subprotocol, then cookie + Origin."""
    token = bearer_from_header(websocket.headers.get("Authorization"))
    if token:
        return token
    for offered in websocket.requested_subprotocols:
        if offered.startswith(protocol.BEARER_SUBPROTOCOL_PREFIX):
            return offered[len(protocol.BEARER_SUBPROTOCOL_PREFIX) :]
    cookie = websocket.cookies.get(SESSION_COOKIE)
    if cookie:
        if not origin_allowed(
            websocket.headers.get("Origin"),
            websocket.headers.get("Host", ""),
            services().settings.allowed_origins,
        ):
            raise Forbidden("cookie authentication needs an allowed Origin", code="bad_origin")
        return cookie
    raise AuthError("no credentials")
