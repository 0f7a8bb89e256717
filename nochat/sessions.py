"""The session registry: this node's open connections by session (and by id), and the
reach of logout and of admins' decisions about accounts and connections: every node
closes its own sockets of a session, an account or a connection id when the broker's
signal arrives.

It knows a connection only through `Registered`, so it (and `Services`) never imports
connection.py: the import runs one way, connection → services.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from typing import Protocol

from .auth import Authenticator
from .broker import Broker, SignalKind, SignalPayload
from .broker.presence import PresenceBoard
from .drain import Drain
from .errors import CloseCode
from .hub import Hub, Subscriber
from .store import Session, User


class Registered(Protocol):
    """What the registry needs of a connection."""

    @property
    def sub(self) -> Subscriber: ...
    @property
    def user(self) -> User: ...
    @property
    def session(self) -> Session: ...
    @property
    def conn_id(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def since_ms(self) -> int: ...
    def joined_rooms(self) -> list[str]: ...
    def extend(self, expires_at_ms: int) -> None: ...
    def push(self, encoded: str) -> None: ...
    def leave_room(self, room: str, reason: str) -> None:
        """Leave the room at the server's word, telling the client (`left` with reason)."""
        ...


class ConnectionRegistry:
    def __init__(
        self, hub: Hub, presence: PresenceBoard, broker: Broker, drain: Drain, auth: Authenticator
    ) -> None:
        self._auth = auth
        self._hub = hub
        self._presence = presence
        self._broker = broker
        self._drain = drain
        #: Open connections by the session that opened them (logout and refresh reach them).
        self.by_session: dict[str, set[Registered]] = {}
        #: ... and by their id (`<node>.<n>`: an admin's disconnect names one).
        self.by_id: dict[str, Registered] = {}
        #: This process's name among the nodes (random per start).
        self.node = secrets.token_hex(4)
        self._ids = itertools.count(1)
        broker.on_signal(SignalKind.SESSION_ENDED, self._session_ended)
        broker.on_signal(SignalKind.ACCOUNT_CHANGED, self._account_changed)
        broker.on_signal(SignalKind.CONNECTION_CLOSED, self._connection_closed)

    def new_id(self) -> str:
        """An id for a new connection, unique across nodes."""
        return f"{self.node}.{next(self._ids)}"

    def all(self) -> Iterator[Registered]:
        for conns in list(self.by_session.values()):
            yield from list(conns)

    def register(self, conn: Registered) -> None:
        self._hub.connect(conn.sub)
        self._presence.connect(conn.user.name)
        self.by_session.setdefault(conn.session.id, set()).add(conn)
        self.by_id[conn.conn_id] = conn

    def unregister(self, conn: Registered) -> None:
        self._hub.disconnect(conn.sub)
        self._presence.disconnect(conn.user.name)
        self.by_id.pop(conn.conn_id, None)
        conns = self.by_session.get(conn.session.id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.by_session[conn.session.id]
        self._drain.connection_closed()

    def end_session(self, session_id: str) -> None:
        """Logout: every socket opened with this session, on every node, closes with 4001."""
        self._broker.signal(SignalKind.SESSION_ENDED, {"session": session_id})

    def _session_ended(self, payload: SignalPayload) -> None:
        self._auth.forget(payload["session"])  # another node's logout: no cached session
        for conn in self.by_session.get(payload["session"], ()):
            conn.sub.close(CloseCode.TOKEN_EXPIRED)

    def end_account(self, user_id: int, code: CloseCode | None) -> None:
        """The account changed (banned, disabled, signed out, muted, promoted…): every node
        forgets what it cached of it, and closes its sockets with `code` when given."""
        payload = {"user": str(user_id), "close": "" if code is None else str(int(code))}
        self._broker.signal(SignalKind.ACCOUNT_CHANGED, payload)

    def _account_changed(self, payload: SignalPayload) -> None:
        close = payload.get("close", "")
        if not close:
            return
        user_id = int(payload["user"])
        self._auth.forget_user(user_id)
        for conn in self.all():
            if conn.user.id == user_id:
                conn.sub.close(CloseCode(int(close)))

    def disconnect(self, conn_id: str) -> None:
        """An admin's disconnect: the node holding the connection closes it with 4004."""
        self._broker.signal(SignalKind.CONNECTION_CLOSED, {"id": conn_id})

    def _connection_closed(self, payload: SignalPayload) -> None:
        conn = self.by_id.get(payload["id"])
        if conn is not None:
            conn.sub.close(CloseCode.DISCONNECTED)

    def session_extended(self, session: Session) -> None:
        for conn in self.by_session.get(session.id, ()):
            conn.extend(session.expires_at_ms)
