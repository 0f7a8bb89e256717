"""Keepalive for every connection from one task: pings, silence (4002), expiry (4001).

A heartbeat task per socket cost each connection a Trio task, its coroutine frames and
a timer of its own, most of an idle connection's memory after the sockets themselves
(docs/BENCHMARKS.md, "Idle connections"). Here one task keeps a heap of the next moment
each connection needs looking at and asks the connection what to do then
(`Connection.keepalive_due`). Deadlines that move later (a frame arrived, a session was
refreshed) need no heap update: the connection answers with its new deadline when its
old one comes up. A connection that has ended answers None and leaves the heap; the heap
holds connections weakly, so an ended one is not kept alive until then.
"""

from __future__ import annotations

import heapq
import itertools
import math
import weakref
from typing import Protocol

import trio

#: Shortest wait before the same connection is looked at again.
MIN_STEP_S = 0.001


class Watched(Protocol):
    def keepalive_due(self, now: float) -> float | None:
        """Act on what is due at `now`; the next deadline, or None to stop watching."""
        ...


class Keepalive:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, weakref.ref[Watched]]] = []
        self._order = itertools.count()
        self._wake = trio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def watch(self, conn: Watched, first_due: float) -> None:
        """Look at `conn` at `first_due` (and then when it says)."""
        if not self._heap or first_due < self._heap[0][0]:
            self._wake.set()
        heapq.heappush(self._heap, (first_due, next(self._order), weakref.ref(conn)))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        heap = self._heap
        task_status.started()
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                _, order, ref = heapq.heappop(heap)
                conn = ref()
                if conn is None:
                    continue
                due = conn.keepalive_due(now)
                if due is not None:  # never at `now` again: that would spin
                    heapq.heappush(heap, (max(due, now + MIN_STEP_S), order, ref))
            self._wake = trio.Event()
            with trio.move_on_at(heap[0][0] if heap else math.inf):
                await self._wake.wait()
