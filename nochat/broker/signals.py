"""Signal handlers by kind: the in-process half of every broker's node-wide signals."""

from __future__ import annotations

import logging

from . import SignalHandler, SignalKind, SignalPayload

log = logging.getLogger(__name__)


class Signals:
    def __init__(self) -> None:
        self._handlers: dict[SignalKind, list[SignalHandler]] = {}
        self.dispatched = 0

    def on(self, kind: SignalKind, handler: SignalHandler) -> None:
        self._handlers.setdefault(kind, []).append(handler)

    def dispatch(self, kind: SignalKind, payload: SignalPayload) -> None:
        """Run this node's handlers for one signal (from this node or another)."""
        self.dispatched += 1
        for handler in self._handlers.get(kind, ()):
            handler(payload)
