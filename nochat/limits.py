"""Rate limits: token buckets per connection, a failure throttle for logins, per-user
replay slots and the typing gate."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


class TokenBucket:
    """`rate` tokens a second up to `burst`; `take` spends one or says how long to wait."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> float:
        """0.0 if a token was taken, else the seconds until one will be there."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class FailureThrottle:
    """At most `limit` failures per key in `window_s`; then the key waits out the window.

    Memory is bounded: at most `max_keys` keys are tracked, the stalest dropped first.
    """

    def __init__(self, limit: int, window_s: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def retry_after(self, key: str, now: float) -> float:
        """0.0 if `key` may try now, else the seconds until its oldest failure expires."""
        recent = self._recent(key, now)
        if len(recent) < self.limit:
            return 0.0
        return recent[0] + self.window_s - now

    def failed(self, key: str, now: float) -> None:
        recent = self._recent(key, now)
        recent.append(now)
        self._failures[key] = recent
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> list[float]:
        times = self._failures.get(key)
        if not times:
            return []
        cutoff = now - self.window_s
        return [t for t in times if t > cutoff]


class KeyedSlots:
    """At most `per_key` holders per key at once; the others wait their turn, in order.

    Memory is bounded by the keys in use: a key's semaphore goes when nobody holds or
    waits for it.
    """

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._slots: dict[str, trio.Semaphore] = {}

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        sem = self._slots.get(key)
        if sem is None:
            sem = self._slots[key] = trio.Semaphore(self.per_key)
        try:
            async with sem:
                yield
        finally:
            if sem.value == self.per_key and not sem.statistics().tasks_waiting:
                self._slots.pop(key, None)

    def holders(self, key: str) -> int:
        sem = self._slots.get(key)
        return 0 if sem is None else self.per_key - sem.value


class TypingGate:
    """Which `typing` frames go out: at most one per user per room per `interval_s`, however
    many sockets the user has, and in rooms of more than `big_room` subscribers at most
    `room_max` per `interval_s` for the whole room (a fan-out of N sockets each). The
    rest are dropped: typing is a hint, never stored, and the next one comes soon.

    Memory is bounded: entries older than an interval are swept whenever the table has
    doubled since the last sweep.
    """

    def __init__(self, interval_s: float, room_max: int, big_room: int) -> None:
        self.interval_s = interval_s
        self.room_max = room_max
        self.big_room = big_room
        self._last: dict[tuple[str, str], float] = {}
        self._rooms: dict[str, TokenBucket] = {}
        self._sweep_at = 1024

    def allow(self, room: str, user: str, subscribers: int, now: float) -> bool:
        key = (room, user)
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return False
        if subscribers > self.big_room:
            bucket = self._rooms.get(room)
            if bucket is None:
                rate = self.room_max / self.interval_s
                bucket = self._rooms[room] = TokenBucket(rate, self.room_max, now)
            if bucket.take(now):
                return False
        self._last[key] = now
        if len(self._last) + len(self._rooms) >= self._sweep_at:
            self._sweep(now)
        return True

    def _sweep(self, now: float) -> None:
        cutoff = now - self.interval_s
        self._last = {k: t for k, t in self._last.items() if t > cutoff}
        self._rooms = {r: b for r, b in self._rooms.items() if b.stamp > cutoff}
        self._sweep_at = max(1024, 2 * (len(self._last) + len(self._rooms)))
