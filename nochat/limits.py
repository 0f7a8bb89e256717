"""Rate limits: token buckets (per connection, and per user across REST requests), and
windowed counters (failed logins, room creations)."""

from __future__ import annotations

from collections import OrderedDict


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


class EventWindow(FailureThrottle):
    """At most `limit` events per key in `window_s`, whatever their outcome (room creations)."""

    def spend(self, key: str, now: float) -> float:
        """0.0 if `key` may act now (the event is counted), else the seconds to wait."""
        wait = self.retry_after(key, now)
        if wait <= 0:
            self.failed(key, now)
        return wait
