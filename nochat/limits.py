"""Rate limits: token buckets (per connection, and per user across REST requests),
windowed counters (failed logins, sign-ups, room creations), bounded pools for
CPU-heavy work (password hashing), per-user replay slots and the typing gate."""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import trio

from .errors import Overloaded, RateLimited

T = TypeVar("T")

#: How soon to try again when only attempts still in flight fill a throttle's allowance.
IN_FLIGHT_RETRY_S = 1.0


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


class UserBuckets:
    """One TokenBucket per key (a user id), shared by every request of that key.

    Memory is bounded: at most `max_keys` buckets are kept, the least recently used
    dropped first; a key seen again after that starts with a full burst, which is what
    a key idle that long would have saved up anyway (the oldest of 100,000).
    """

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[int, TokenBucket] = OrderedDict()

    def take(self, key: int, now: float) -> float:
        """0.0 if `key` may go on now (a token spent), else the seconds until it may."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)


class FailureThrottle:
    """At most `limit` failures per key in `window_s`; then the key waits out the window.

    An attempt in flight (`begin` … `end`) counts against the limit as if it had already
    failed: the check happens before the slow work (argon2) and the failure is known only
    after it, so without the reservation N concurrent attempts would all pass the check.
    Memory is bounded: at most `max_keys` keys are tracked, the stalest dropped first;
    keys in flight are bounded by the hashing pools' queues.
    """

    def __init__(self, limit: int, window_s: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._in_flight: dict[str, int] = {}

    def retry_after(self, key: str, now: float) -> float:
        """0.0 if `key` may try now, else the seconds until it may."""
        recent = self._recent(key, now)
        if len(recent) + self._in_flight.get(key, 0) < self.limit:
            return 0.0
        if len(recent) < self.limit:
            return IN_FLIGHT_RETRY_S
        return recent[len(recent) - self.limit] + self.window_s - now

    def begin(self, key: str) -> None:
        """Reserve one attempt for `key` (call `end` exactly once, in a `finally`)."""
        self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def end(self, key: str, now: float, *, failed: bool) -> None:
        left = self._in_flight.get(key, 0) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self._in_flight.pop(key, None)
        if failed:
            self.failed(key, now)

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


class Outcome(enum.Enum):
    """How a reserved login attempt ended."""

    OK = "ok"
    FAILED = "failed"
    #: Refused before the password was checked (hashing pool full): not counted.
    NOT_TRIED = "not_tried"


class LoginThrottle:
    """Failed logins counted per (name, address), per name and per address.

    The pair is the tight limit (a guesser at one account from one place); the name's
    own limit is higher (one account guessed from many places); the address's is much
    higher again, so one address (a NAT, a reverse proxy) failing at some names never
    locks out the others' correct passwords until it reaches that ceiling.
    """

    def __init__(self, per_pair: int, per_name: int, per_address: int, window_s: float) -> None:
        self._pair = FailureThrottle(per_pair, window_s)
        self._name = FailureThrottle(per_name, window_s)
        self._address = FailureThrottle(per_address, window_s)

    def begin(self, name: str, address: str, now: float) -> LoginAttempt:
        """Reserve an attempt, or raise RateLimited with how long to wait."""
        name = name.lower()
        keys = (
            (self._pair, name + "\x00" + address),
            (self._name, name),
            (self._address, address),
        )
        wait = max(throttle.retry_after(key, now) for throttle, key in keys)
        if wait > 0:
            raise RateLimited("too many failed logins; try again later", retry_after_s=wait)
        for throttle, key in keys:
            throttle.begin(key)
        return LoginAttempt(keys)


class LoginAttempt:
    """One reserved login attempt; `end` it once, whatever happened."""

    __slots__ = ("_keys",)

    def __init__(self, keys: tuple[tuple[FailureThrottle, str], ...]) -> None:
        self._keys = keys

    def end(self, now: float, outcome: Outcome) -> None:
        for throttle, key in self._keys:
            throttle.end(key, now, failed=outcome is Outcome.FAILED)
        if outcome is Outcome.OK:
            pair, key = self._keys[0]
            pair.succeeded(key)


class HashingPool:
    """At most `threads` jobs run at once in worker threads, at most `queue` wait for one;
    any more are refused at once with Overloaded (HTTP 503 + Retry-After), never queued
    without bound. Logins and sign-ups get a pool each, so a sign-up flood cannot make
    a login wait behind it."""

    def __init__(self, threads: int, queue: int, *, retry_after_s: float = 1.0) -> None:
        self._limiter = trio.CapacityLimiter(threads)
        self._queue = queue
        self._retry_after_s = retry_after_s

    async def run_sync(self, fn: Callable[..., T], *args: object) -> T:
        stats = self._limiter.statistics()
        if stats.borrowed_tokens >= stats.total_tokens and stats.tasks_waiting >= self._queue:
            raise Overloaded(
                "too much password hashing in progress; try again shortly",
                retry_after_s=self._retry_after_s,
            )
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def statistics(self) -> trio.CapacityLimiterStatistics:
        return self._limiter.statistics()


class EventWindow(FailureThrottle):
    """At most `limit` events per key in `window_s`, whatever their outcome (room creations)."""

    def spend(self, key: str, now: float) -> float:
        """0.0 if `key` may act now (the event is counted), else the seconds to wait."""
        wait = self.retry_after(key, now)
        if wait <= 0:
            self.failed(key, now)
        return wait


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
