"""Shutdown: refuse new work, close every connection with 1012, say when all have gone."""

from __future__ import annotations

import trio

from .errors import CloseCode
from .hub import Hub


class Drain:
    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.shutting_down = False
        #: Set when the last connection has gone during shutdown.
        self.drained = trio.Event()

    def begin(self) -> None:
        """Refuse new work and ask every connection to close with 1012."""
        self.shutting_down = True
        self._hub.close_all(CloseCode.RESTART)
        self.connection_closed()

    def connection_closed(self) -> None:
        if self.shutting_down and self._hub.connection_count() == 0:
            self.drained.set()
