"""Admission: whether one more WebSocket may open (shutdown, server and per-user caps)."""

from __future__ import annotations

from .broker.presence import PresenceBoard
from .drain import Drain
from .errors import RateLimited, Unavailable
from .hub import Hub
from .settings import Settings
from .store import User


class Admission:
    def __init__(self, settings: Settings, hub: Hub, presence: PresenceBoard, drain: Drain) -> None:
        self._settings = settings
        self._hub = hub
        self._presence = presence
        self._drain = drain

    def admit(self, user: User) -> None:
        """Refuse a handshake the caps do not allow (call right before `Connection.serve`).

        Both caps count this node's sockets (docs/SECURITY.md: per node)."""
        if self._drain.shutting_down:
            raise Unavailable("the server is shutting down")
        if self._hub.connection_count() >= self._settings.max_connections:
            raise Unavailable("the server is at its connection limit")
        if self._presence.connections_of(user.name) >= self._settings.max_connections_per_user:
            raise RateLimited("too many open connections for this user", retry_after_s=5.0)
