"""Rate-limit building blocks, on a hand-driven clock."""

from __future__ import annotations

from nochat.limits import EventWindow, UserBuckets


def test_limits_user_buckets_are_per_key_and_refill() -> None:
    buckets = UserBuckets(rate=2.0, burst=2)
    assert buckets.take(1, 0.0) == buckets.take(1, 0.0) == 0.0
    assert buckets.take(1, 0.0) == 0.5  # one token every 0.5 s
    assert buckets.take(2, 0.0) == 0.0  # another user has their own
    assert buckets.take(1, 0.5) == 0.0


def test_limits_user_buckets_keep_at_most_max_keys() -> None:
    buckets = UserBuckets(rate=1.0, burst=1, max_keys=3)
    for key in range(10):
        buckets.take(key, 0.0)
    assert len(buckets._buckets) == 3
    assert buckets.take(9, 0.0) > 0  # the most recent keys are the ones kept


def test_limits_event_window_counts_every_event_per_key() -> None:
    window = EventWindow(limit=2, window_s=3600.0)
    assert window.spend("a", 0.0) == window.spend("a", 10.0) == 0.0
    assert window.spend("a", 20.0) == 3600.0 - 20.0  # until the oldest leaves the window
    assert window.spend("b", 20.0) == 0.0
    assert window.spend("a", 3600.5) == 0.0
