"""Catch-up after `join since`: missed events from the store, within the byte budget.

The room log is replayed as it was written (messages, edits, deletes, reactions, each
at its seq), so a client that was away applies the changes in the one order. A deleted
message's text and its edits' texts are gone from the log: they replay as "", followed
by the delete.

A joining client that is behind gets the messages it missed through its outbox, behind
`joined`, before it goes live. Memory is what this has to watch: a room of large messages
and many slow readers once cost gigabytes (a 500-message page per socket, and an outbox
of 256 chunks of up to 128 KiB each). So a replay
- keeps what it queues under half the subscriber's byte budget (REPLAY_SHARE), so live
  events, replies and pings always find room and never evict a client that reads;
- reads a page only when its share is half free, and sizes the page by what the last
  page's events weighed (the first assumes the longest messages);
- waits for room before each outbox item instead of queueing past its share;
- evicts (4008) a client that makes no room for `outbox_stall_s`;
- runs at most `replays_per_user` at once per user: further joins wait their turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import trio

from . import events, protocol
from .hub import RoomCursor, Subscriber
from .store import Event, Room
from .subscriber import pack

if TYPE_CHECKING:
    from .services import Services

#: What a message event weighs beyond its text, in characters (a page's first estimate).
EVENT_OVERHEAD_CHARS = 256
#: The part of a subscriber's byte budget a replay may fill.
REPLAY_SHARE = 0.5
#: Longest a join waits for the broker to know where a just-opened room stands (one
#: SUBSCRIBE and one store read; with Redis down it gives up and goes on).
HEAD_WAIT_S = 2.0


async def catch_up(
    services: Services, sub: Subscriber, user: str, room: Room, cursor: RoomCursor
) -> None:
    """Replay from the store until caught up with what the hub has been given, then go live.

    Live messages seen meanwhile only raise `cursor.seen`; the switch to live happens
    with no await between the last check and the flag, so nothing falls in between.

    "What the hub has been given" is the broker's head of the room, not this process's
    commits: with several nodes, events of other nodes reach the hub too, and when the
    room has just opened here its head is not known until the broker has subscribed and
    read the store. Going live before that could put the cursor behind an event the
    broker then starts after (a seq never delivered). So the replay waits for the head
    (at most HEAD_WAIT_S: with Redis down it may not come; the hub's seq check then
    evicts rather than skips) and reads the store at least up to it.
    """
    broker = services.broker
    head = broker.head(room.name)
    if head is None:
        with trio.move_on_after(HEAD_WAIT_S):
            head = await broker.wait_head(room.name)
        if sub.rooms.get(room.name) is not cursor:
            return  # left (or re-joined) meanwhile
    if head is not None and cursor.seq >= head and cursor.seen <= cursor.seq:
        cursor.live = True  # nothing was missed: no store read at all
        return
    async with services.throttles.replays.slot(user):
        if sub.rooms.get(room.name) is cursor:
            await _replay(services, sub, room, cursor)


async def _replay(services: Services, sub: Subscriber, room: Room, cursor: RoomCursor) -> None:
    settings = services.settings
    page = settings.resume_page
    weight = settings.max_text_chars + EVENT_OVERHEAD_CHARS
    share = int(sub.budget * REPLAY_SHARE)
    replayed = 0
    while True:
        if not await _wait_room(services, sub, share // 2, share):
            return
        limit = max(1, min(page, (share - sub.used()) // weight))
        missed = await services.store.replay(room, after=cursor.seq, limit=limit)
        if sub.rooms.get(room.name) is not cursor:
            return  # left (or re-joined) meanwhile
        full = len(missed) == limit
        if missed:
            replayed += len(missed)
            chars = 0
            for item, _ in _packed(missed):
                chars += len(item)
                if not await _wait_room(services, sub, len(item), share):
                    return
                if sub.rooms.get(room.name) is not cursor:
                    return
                try:
                    sub.enqueue(item)  # through the outbox, behind `joined`
                except trio.WouldBlock:
                    services.hub.evict(sub)
                    return
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    return  # evicted or closing meanwhile
            weight = max(EVENT_OVERHEAD_CHARS, chars // len(missed))
            cursor.seq = missed[-1].seq
        del missed
        if not full and cursor.seen <= cursor.seq:
            cursor.live = True
            break
    if replayed:
        services.counters.resumes += 1
        services.telemetry.replayed.inc(replayed)


async def _wait_room(services: Services, sub: Subscriber, chars: int, limit: int) -> bool:
    """Wait until `chars` more fit under `limit`; False (evicted or closing) if the client
    does not make that room within outbox_stall_s."""
    with trio.move_on_after(services.settings.outbox_stall_s):
        await sub.wait_room(chars, limit)
        return sub.close_code is None
    services.hub.evict(sub)
    return False


def _packed(missed: list[Event]) -> Iterator[tuple[str, int]]:
    return pack([(protocol.encode(events.log_event(e)), e.seq) for e in missed])
