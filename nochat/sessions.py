"""The session registry: this node's open connections by session, and logout's reach.

It knows a connection only through `Registered`, so it (and `Services`) never imports
connection.py: the import runs one way, connection → services.
"""

from __future__ import annotations

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
    def extend(self, expires_at_ms: int) -> None: ...
    def push(self, encoded: str) -> None: ...


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
        broker.on_signal(SignalKind.SESSION_ENDED, self._session_ended)

    def register(self, conn: Registered) -> None:
        self._hub.connect(conn.sub)
        self._presence.connect(conn.user.name)
        self.by_session.setdefault(conn.session.id, set()).add(conn)

    def unregister(self, conn: Registered) -> None:
        self._hub.disconnect(conn.sub)
        self._presence.disconnect(conn.user.name)
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

    def session_extended(self, session: Session) -> None:
        for conn in self.by_session.get(session.id, ()):
            conn.extend(session.expires_at_ms)
