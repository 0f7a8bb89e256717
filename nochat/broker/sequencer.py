"""The Sequencer: between a broker and the hub, delivers each room strictly in seq order.

Events of one room can reach a node out of order (several nodes publish into it) or not
at all (Redis drops pub/sub messages when a connection breaks). The Sequencer keeps each
open room's delivered `head` and only ever hands the hub the item that starts at
`head + 1`, so the head advances by exactly one event at a time:

- an item from the future is held, at most `hold_s` (the usual reordering of a few
  milliseconds costs nothing more than the wait for the missing item);
- a gap still open after `hold_s` is read from the store (`fetch_range`) and delivered
  in order, then the held items behind it;
- an item at or below the head is a duplicate (already delivered, or read from the
  store) and is dropped.

Events without seq (presence, typing) pass straight through. A room's head is unknown
until `advance` says where the store is (the broker reads it, `read_heads`, once the
room is open, after SUBSCRIBE with Redis); items meanwhile are held, and delivered from
the earliest on, so a subscriber that joined just before the room opened misses none.
An item straddling the head (impossible while commits are atomic) is dropped and its
range read from the store, so nothing is ever skipped or sent twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from math import inf

import trio

from ..errors import NoChatError

log = logging.getLogger(__name__)

#: Reads a room's committed events with after < seq <= upto from the store, in seq order,
#: as (encoded event, seq) pairs: how a gap the broker left is filled.
FetchRange = Callable[[str, int, int], Awaitable[list[tuple[str, int]]]]
#: A room's committed head seq in the store (where a newly open room starts).
FetchHead = Callable[[str], Awaitable[int]]

#: Hand one item to the hub: (room, encoded, last seq, first seq); seqs None: unordered.
Deliver = Callable[[str, str, int | None, int | None], None]
#: Items held for one room before its gap is filled at once rather than after hold_s.
MAX_HELD = 1024


@dataclass(slots=True)
class _Room:
    head: int | None = None
    #: Items from the future by their first seq: (last seq, encoded).
    held: dict[int, tuple[int, str]] = field(default_factory=dict)
    #: Read the store up to here at the next fill (a reconnect, a straddling item).
    fill_to: int = 0
    #: When the open gap is filled from the store (inf: no gap).
    deadline: float = inf
    #: Set once `head` is known (`wait_head`).
    known: trio.Event = field(default_factory=trio.Event)


class Sequencer:
    def __init__(
        self,
        deliver: Deliver,
        fetch_range: FetchRange,
        *,
        hold_s: float,
    ) -> None:
        self._deliver = deliver
        self._fetch_range = fetch_range
        self._hold_s = hold_s
        self._rooms: dict[str, _Room] = {}
        self._wake = trio.Event()
        self.held = 0
        self.filled = 0
        self.duplicates = 0

    def open(self, room: str) -> None:
        """Track `room` (its head unknown); items of rooms not open are dropped."""
        self._rooms.setdefault(room, _Room())

    def close(self, room: str) -> None:
        self._rooms.pop(room, None)

    def is_open(self, room: str) -> bool:
        return room in self._rooms

    def head(self, room: str) -> int | None:
        state = self._rooms.get(room)
        return None if state is None else state.head

    async def wait_head(self, room: str) -> int | None:
        """The room's head once it is known (None: the room is not open, or was closed)."""
        state = self._rooms.get(room)
        if state is None:
            return None
        await state.known.wait()
        return self.head(room) if self._rooms.get(room) is state else None

    def offer(self, room: str, encoded: str, seq: int | None, first: int | None = None) -> None:
        """One item from anywhere (this node or another); delivered now if it is next."""
        if seq is None:
            self._deliver(room, encoded, None, None)
            return
        state = self._rooms.get(room)
        if state is None:
            return
        first = seq if first is None else first
        head = state.head
        if head is None:
            self._hold(state, first, seq, encoded)
            return
        if seq <= head:
            self.duplicates += 1
        elif first == head + 1:
            self._deliver(room, encoded, seq, first)
            state.head = seq
            if state.held:
                self._drain(room, state)
        elif first <= head:
            self._need(state, seq)
        else:
            self._hold(state, first, seq, encoded)

    def advance(self, room: str, head: int) -> None:
        """The store's head of `room` is `head`: deliver (from the store) up to there."""
        state = self._rooms.get(room)
        if state is None:
            return
        if state.head is None:
            # Held items came after the room opened: whoever joined then has the seqs
            # before the earliest of them, maybe not those up to the store's head.
            state.head = min(head, min(state.held) - 1) if state.held else head
            state.known.set()
            self._drain(room, state)
            if head > state.head:
                self._need(state, head)
        elif head > state.head:
            self._need(state, head)

    async def read_heads(self, rooms: set[str], fetch_head: FetchHead) -> None:
        """Read the store's head of each room in `rooms` (emptying it) and `advance`."""
        while rooms:
            room = rooms.pop()
            try:
                head = await fetch_head(room)
            except NoChatError:
                log.warning("could not read room %s's head; its first item starts it", room)
                continue
            self.advance(room, head)

    def _hold(self, state: _Room, first: int, seq: int, encoded: str) -> None:
        self.held += 1
        state.held.setdefault(first, (seq, encoded))
        if len(state.held) > MAX_HELD:
            state.deadline = -inf
            self._wake.set()
        elif state.deadline == inf:
            state.deadline = trio.current_time() + self._hold_s
            self._wake.set()

    def _need(self, state: _Room, upto: int) -> None:
        state.fill_to = max(state.fill_to, upto)
        state.deadline = -inf
        self._wake.set()

    def _drain(self, room: str, state: _Room) -> None:
        """Deliver the held items that are next; drop those the head has passed."""
        held = state.held
        head = state.head
        assert head is not None
        for first in sorted(held):
            seq, encoded = held[first]
            if seq <= head:
                self.duplicates += 1
            elif first == head + 1:
                self._deliver(room, encoded, seq, first)
                head = seq
            elif first <= head:
                state.fill_to = max(state.fill_to, seq)  # straddles: read it from the store
            else:
                break
            del held[first]
        state.head = head
        if state.fill_to > head:
            state.deadline = -inf
            self._wake.set()
        elif not held:
            state.deadline = inf
        elif state.deadline == inf or state.deadline <= trio.current_time():
            state.deadline = trio.current_time() + self._hold_s
            self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fill each gap still open at its deadline from the store, one room at a time."""
        task_status.started()
        while True:
            deadline = min((s.deadline for s in self._rooms.values()), default=inf)
            with trio.move_on_at(deadline):
                await self._wake.wait()
            self._wake = trio.Event()
            now = trio.current_time()
            for room, state in list(self._rooms.items()):
                if state.deadline <= now:
                    await self._fill(room, state)

    async def _fill(self, room: str, state: _Room) -> None:
        if state.head is None:
            # Nobody said where the room starts (the store's head has not come): the
            # earliest item held is the start. Subscribers read the rest from the store.
            state.head = min(state.held) - 1 if state.held else None
            if state.head is not None:
                state.known.set()
                self._drain(room, state)
            else:
                state.deadline = inf
            return
        upto = max(state.fill_to, min(state.held) - 1 if state.held else state.head)
        if upto <= state.head:
            self._drain(room, state)
            return
        try:
            events = await self._fetch_range(room, state.head, upto)
        except NoChatError:
            log.warning("could not fill a gap in room %s from the store; retrying", room)
            state.deadline = trio.current_time() + self._hold_s
            return
        if self._rooms.get(room) is not state:
            return  # closed (or re-opened) meanwhile
        self.filled += 1
        head = state.head
        for encoded, seq in events:
            if seq == head + 1:
                self._deliver(room, encoded, seq, seq)
                head = seq
        if head < upto:
            log.warning("store had no events %d..%d of room %s; skipping", head + 1, upto, room)
            head = upto
        state.head = head
        self._drain(room, state)
