"""Rate-limit building blocks, on a hand-driven clock: per-user buckets, event windows,
the typing gate and per-user replay slots."""

from __future__ import annotations

import trio
import trio.testing

from nochat.limits import EventWindow, KeyedSlots, TypingGate, UserBuckets


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


def test_typing_gate_one_per_user_per_room_per_interval_whatever_the_sockets() -> None:
    gate = TypingGate(interval_s=2.0, room_max=10, big_room=100)
    # 100 sockets of 5 users each send a typing frame at the same instant.
    allowed = [gate.allow("general", f"u{i % 5}", 50, 0.0) for i in range(500)]
    assert sum(allowed) == 5
    assert not gate.allow("general", "u0", 50, 1.9)
    assert gate.allow("general", "u0", 50, 2.0)  # the next interval
    assert gate.allow("other", "u1", 50, 1.0)  # rooms are counted apart


def test_typing_gate_caps_a_big_room_per_interval() -> None:
    gate = TypingGate(interval_s=2.0, room_max=10, big_room=100)
    first = sum(gate.allow("big", f"u{i}", 5000, 0.0) for i in range(1000))
    assert first == 10
    later = sum(gate.allow("big", f"v{i}", 5000, 1.0) for i in range(1000))
    assert later == 5  # the bucket refills at room_max per interval


def test_typing_gate_table_stays_bounded() -> None:
    gate = TypingGate(interval_s=1.0, room_max=10, big_room=100)
    for t in range(10_000):
        gate.allow("general", f"u{t}", 2, float(t))
    assert len(gate._last) < 2048


async def test_keyed_slots_let_per_key_in_and_the_rest_wait_their_turn() -> None:
    slots = KeyedSlots(per_key=2)
    release = trio.Event()
    inside: list[int] = []

    async def replay(i: int, key: str) -> None:
        async with slots.slot(key):
            inside.append(i)
            await release.wait()

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(replay, i, "ann")
        nursery.start_soon(replay, 9, "bob")
        await trio.testing.wait_all_tasks_blocked()
        assert len(inside) == 3 and 9 in inside  # two of ann's; bob is not held up by ann
        assert slots.holders("ann") == 2
        release.set()
    assert sorted(inside) == [0, 1, 2, 3, 4, 9]
    assert slots.holders("ann") == 0 and not slots._slots  # nothing left behind
