"""Rate limits as units: the typing gate and per-user replay slots."""

from __future__ import annotations

import trio
import trio.testing

from nochat.limits import KeyedSlots, TypingGate


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
