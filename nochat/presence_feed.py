"""Presence changes on their way to a room: at once in small rooms, batched in big ones."""

from __future__ import annotations

from typing import Any

import trio

from . import events, protocol
from .broker import Broker
from .hub import Hub
from .store import UserStatus, now_ms
from .subscriber import pack

#: How often a big room's presence changes go out together.
PRESENCE_BATCH_S = 0.25


class PresenceFeed:
    def __init__(self, hub: Hub, broker: Broker, batch_above: int) -> None:
        self._hub = hub
        self._broker = broker
        self._batch_above = batch_above
        self._pending: dict[str, dict[str, str]] = {}
        self._wake = trio.Event()
        #: Connected users' stored statuses (StatusBook fills it): shown as they come online.
        self.statuses: dict[str, UserStatus] = {}

    def announce(self, room: str, user: str, state: str, *, batch: bool = False) -> None:
        """Tell the room `user` came online or went offline.

        In a room of more than `batch_above` subscribers, or when the caller says many
        changes come at once (`batch`: a dead node's users, whose room may be big on
        other nodes though small here), changes are collected and sent
        together every PRESENCE_BATCH_S (latest state per user): a storm of N users
        joining a room of N would otherwise cost N² deliveries. A room with changes
        waiting keeps batching, so an older state never overtakes a newer one.
        """
        pending = self._pending
        if not batch and room not in pending and self._hub.subscribers(room) <= self._batch_above:
            self._broker.publish(room, protocol.encode(self._event(room, user, state)))
            return
        pending.setdefault(room, {})[user] = state
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send the batched presence changes of big rooms, once per PRESENCE_BATCH_S."""
        task_status.started()
        while True:
            await self._wake.wait()
            await trio.sleep(PRESENCE_BATCH_S)
            self._wake = trio.Event()
            pending, self._pending = self._pending, {}
            for room, states in pending.items():
                events = [
                    (protocol.encode(self._event(room, user, state)), 0)
                    for user, state in states.items()
                ]
                for item, _ in pack(events):
                    self._broker.publish(room, item)

    def _event(self, room: str, user: str, state: str) -> dict[str, Any]:
        """A presence event: a user who comes online shows their status (away, busy)."""
        status = self.statuses.get(user)
        text = status.text if status is not None and state != "offline" else ""
        if state == "online" and status is not None:
            state = status.state
        return events.presence_event(room, user, state, text, now_ms())
