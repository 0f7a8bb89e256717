"""LocalBroker: one process, so publishing is handing the event to the hub, in seq order."""

from __future__ import annotations

import trio

from ..hub import Hub
from . import (
    BrokerStatistics,
    BrokerStatus,
    FetchHead,
    FetchRange,
    SignalHandler,
    SignalKind,
    SignalPayload,
)
from .sequencer import Sequencer
from .signals import Signals


class LocalBroker:
    """Events go through the Sequencer straight to the hub; signals to this process's
    handlers. In one process the store publishes in commit order, so the Sequencer only
    checks: an item that is next is delivered at once, without a task switch."""

    def __init__(
        self, hub: Hub, *, fetch_range: FetchRange, fetch_head: FetchHead, hold_s: float
    ) -> None:
        self.hub = hub
        self.sequencer = Sequencer(hub.publish, fetch_range, hold_s=hold_s)
        self._fetch_head = fetch_head
        self._signals = Signals()
        self._needs_head: set[str] = set()
        self._opened = trio.Event()

    @property
    def status(self) -> BrokerStatus:
        return BrokerStatus.HEALTHY

    def statistics(self) -> BrokerStatistics:
        s = self.sequencer
        return BrokerStatistics(self.status, s.held, s.filled, s.duplicates)

    def publish(
        self, room: str, encoded: str, seq: int | None = None, first: int | None = None
    ) -> None:
        self.sequencer.offer(room, encoded, seq, first)

    def subscribe(self, room: str) -> None:
        self.sequencer.open(room)
        self._needs_head.add(room)
        self._opened.set()

    def unsubscribe(self, room: str) -> None:
        self.sequencer.close(room)
        self._needs_head.discard(room)

    def head(self, room: str) -> int | None:
        return self.sequencer.head(room)

    async def wait_head(self, room: str) -> int | None:
        return await self.sequencer.wait_head(room)

    def signal(self, kind: SignalKind, payload: SignalPayload) -> None:
        self._signals.dispatch(kind, payload)

    def on_signal(self, kind: SignalKind, handler: SignalHandler) -> None:
        self._signals.on(kind, handler)

    async def nodes(self) -> int:
        return 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.sequencer.run)
            task_status.started()
            while True:
                await self._opened.wait()
                self._opened = trio.Event()
                await self.sequencer.read_heads(self._needs_head, self._fetch_head)
