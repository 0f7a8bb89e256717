"""The Sequencer: each room delivered strictly in seq order, gaps filled from the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from nochat.broker.sequencer import Sequencer
from nochat.errors import StorageError

HOLD_S = 0.2


@dataclass
class Harness:
    """A Sequencer wired to a list of deliveries and a fake store of room `r`'s events."""

    delivered: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    fetches: list[tuple[str, int, int]] = field(default_factory=list)
    failures: int = 0
    seq: Sequencer = field(init=False)

    def deliver(self, room: str, encoded: str, seq: int | None, first: int | None) -> None:
        self.delivered.append((encoded, seq, first))

    async def fetch_range(self, room: str, after: int, upto: int) -> list[tuple[str, int]]:
        self.fetches.append((room, after, upto))
        if self.failures:
            self.failures -= 1
            raise StorageError("store down")
        return [(f"m{n}", n) for n in range(after + 1, upto + 1)]

    def seqs(self) -> list[int | None]:
        return [seq for _, seq, _ in self.delivered]


async def _harness(nursery: trio.Nursery) -> Harness:
    h = Harness()
    h.seq = Sequencer(h.deliver, h.fetch_range, hold_s=HOLD_S)
    await nursery.start(h.seq.run)
    h.seq.open("r")
    return h


@pytest.fixture
async def h(nursery: trio.Nursery) -> AsyncIterator[Harness]:
    yield await _harness(nursery)


async def test_sequencer_in_order_items_go_at_once(h: Harness) -> None:
    h.seq.advance("r", 0)
    h.seq.offer("r", "m1", 1)
    h.seq.offer("r", "m2..3", 3, 2)
    assert h.delivered == [("m1", 1, 1), ("m2..3", 3, 2)] and h.seq.head("r") == 3


async def test_sequencer_restores_order_without_the_store(
    h: Harness, mock_clock: trio.testing.MockClock
) -> None:
    h.seq.advance("r", 0)
    h.seq.offer("r", "m3", 3)
    h.seq.offer("r", "m2", 2)
    await trio.testing.wait_all_tasks_blocked()
    assert h.seqs() == []  # held: 1 is still missing
    h.seq.offer("r", "m1", 1)
    assert h.seqs() == [1, 2, 3] and h.fetches == []


async def test_sequencer_fills_a_gap_from_the_store_after_hold(
    h: Harness, mock_clock: trio.testing.MockClock
) -> None:
    h.seq.advance("r", 0)
    h.seq.offer("r", "m1", 1)
    h.seq.offer("r", "m4", 4)
    mock_clock.jump(HOLD_S * 0.9)
    await trio.testing.wait_all_tasks_blocked()
    assert h.seqs() == [1] and h.fetches == []  # not before hold_s
    mock_clock.jump(HOLD_S * 0.2)
    await trio.testing.wait_all_tasks_blocked()
    assert h.fetches == [("r", 1, 3)]
    assert h.seqs() == [1, 2, 3, 4] and h.delivered[-1][0] == "m4"


async def test_sequencer_drops_duplicates_and_passes_unordered_events(h: Harness) -> None:
    h.seq.advance("r", 5)
    h.seq.offer("r", "m5", 5)
    h.seq.offer("r", "presence", None)
    h.seq.offer("r", "m6", 6)
    h.seq.offer("r", "m6", 6)
    assert h.seqs() == [None, 6] and h.seq.duplicates == 2


async def test_sequencer_reads_a_straddling_item_from_the_store(
    h: Harness, mock_clock: trio.testing.MockClock
) -> None:
    h.seq.advance("r", 3)
    h.seq.offer("r", "m2..5", 5, 2)
    await trio.testing.wait_all_tasks_blocked()  # at once: no later item can fill it
    assert h.fetches == [("r", 3, 5)] and h.seqs() == [4, 5]


async def test_sequencer_advance_backfills_up_to_the_store_head(
    h: Harness, mock_clock: trio.testing.MockClock
) -> None:
    h.seq.advance("r", 2)
    h.seq.offer("r", "m3", 3)
    h.seq.advance("r", 6)  # a reconnect: the store is at 6
    await trio.testing.wait_all_tasks_blocked()
    assert h.fetches == [("r", 3, 6)] and h.seqs() == [3, 4, 5, 6]
    h.seq.offer("r", "m5", 5)
    h.seq.offer("r", "m7", 7)
    assert h.seqs() == [3, 4, 5, 6, 7]


async def test_sequencer_holds_until_the_head_is_known(
    h: Harness, mock_clock: trio.testing.MockClock
) -> None:
    h.seq.offer("r", "m4", 4)
    h.seq.offer("r", "m5", 5)
    assert h.seqs() == []
    h.seq.advance("r", 5)  # the store's head came; who joined before 4 still needs 4
    assert h.seqs() == [4, 5] and h.fetches == []
    h.seq.offer("r", "m4", 4)
    assert h.seqs() == [4, 5]


async def test_sequencer_open_room_fills_up_to_the_store_head(
    h: Harness, mock_clock: trio.testing.MockClock
) -> None:
    h.seq.offer("r", "m9", 9)
    h.seq.advance("r", 6)  # 7 and 8 are late (or went by before the room was open)
    await trio.testing.wait_all_tasks_blocked()
    assert h.seqs() == []
    mock_clock.jump(HOLD_S)
    await trio.testing.wait_all_tasks_blocked()
    assert h.fetches == [("r", 6, 8)] and h.seqs() == [7, 8, 9]


async def test_sequencer_read_heads_starts_open_rooms(h: Harness) -> None:
    async def fetch_head(room: str) -> int:
        return {"r": 3}[room]

    rooms = {"r"}
    await h.seq.read_heads(rooms, fetch_head)
    h.seq.offer("r", "m4", 4)
    assert not rooms and h.seqs() == [4]


async def test_sequencer_without_a_head_trusts_the_earliest_after_hold(
    h: Harness, mock_clock: trio.testing.MockClock
) -> None:
    h.seq.offer("r", "m8", 8)
    h.seq.offer("r", "m7", 7)
    mock_clock.jump(HOLD_S)
    await trio.testing.wait_all_tasks_blocked()
    assert h.seqs() == [7, 8] and h.fetches == []


async def test_sequencer_drops_items_of_rooms_not_open(h: Harness) -> None:
    h.seq.offer("elsewhere", "x", 1)
    assert h.seqs() == []


async def test_sequencer_retries_a_failed_fill(
    h: Harness, mock_clock: trio.testing.MockClock
) -> None:
    h.failures = 1
    h.seq.advance("r", 0)
    h.seq.offer("r", "m3", 3)
    mock_clock.jump(HOLD_S)
    await trio.testing.wait_all_tasks_blocked()
    assert h.fetches == [("r", 0, 2)] and h.seqs() == []  # failed: tried again after hold_s
    mock_clock.jump(HOLD_S)
    await trio.testing.wait_all_tasks_blocked()
    assert h.fetches == [("r", 0, 2), ("r", 0, 2)] and h.seqs() == [1, 2, 3]


async def test_sequencer_closed_room_forgets_its_head(h: Harness) -> None:
    h.seq.advance("r", 4)
    h.seq.close("r")
    h.seq.offer("r", "m5", 5)
    assert h.seqs() == [] and h.seq.head("r") is None and not h.seq.is_open("r")
