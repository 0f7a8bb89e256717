"""The hub: synchronous fan-out, seq filtering while catching up, eviction on overflow,
the byte budget's account."""

from __future__ import annotations

from itertools import pairwise

import trio
import trio.testing

from nochat.errors import CloseCode
from nochat.hub import (
    BUSY_WITHIN_S,
    CHUNK_MAX_CHARS,
    FLUSH_LINGER_MAX_S,
    FLUSH_LINGER_S,
    PAUSE_MIN_S,
    ROUND_SLICE_S,
    SLICE_CHECK_EVERY,
    Hub,
    RoomCursor,
    Subscriber,
    linger_s,
)
from nochat.protocol import Chunk
from nochat.subscriber import pack
from nochat.wire import text_frame


def _sub(name: str, size: int = 4) -> tuple[Subscriber, trio.MemoryReceiveChannel[str]]:
    send, receive = trio.open_memory_channel[str](size)
    return Subscriber(name, send), receive


def _drain(receive: trio.MemoryReceiveChannel[str]) -> list[str]:
    out = []
    while True:
        try:
            out.append(receive.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return out


def test_hub_publish_reaches_live_subscribers_once() -> None:
    hub = Hub()
    (a, ra), (b, rb) = _sub("a"), _sub("b")
    for sub in (a, b):
        hub.connect(sub)
        hub.subscribe("general", sub, RoomCursor(seq=0, live=True))
    hub.publish("general", "m1", 1)
    hub.publish("general", "m1-again", 1)  # same seq: delivered once
    hub.publish("other", "elsewhere", 1)
    assert _drain(ra) == _drain(rb) == ["m1"]
    assert hub.statistics().delivered == 2


def test_hub_catching_up_subscriber_only_notes_seq() -> None:
    hub = Hub()
    a, ra = _sub("a")
    cursor = RoomCursor(seq=3)
    hub.subscribe("general", a, cursor)
    hub.publish("general", "m4", 4)
    hub.publish("general", "typing", None)
    assert _drain(ra) == [] and cursor.seen == 4
    cursor.seq, cursor.live = 4, True  # the replay covered seq 4
    hub.publish("general", "m4", 4)
    hub.publish("general", "m5", 5)
    assert _drain(ra) == ["m5"]


def test_hub_presence_reaches_a_subscriber_still_replaying_once_joined_went_out() -> None:
    hub = Hub()
    a, ra = _sub("a")
    cursor = RoomCursor(seq=3)
    hub.subscribe("general", a, cursor)
    hub.publish("general", "before-joined", None)  # `joined` (with the online list) follows
    cursor.announced = True
    hub.publish("general", "presence", None)
    hub.publish("general", "m4", 4)  # history still waits for the replay
    assert _drain(ra) == ["presence"] and cursor.seen == 4 and not cursor.live


def test_hub_full_outbox_evicts_without_blocking_others() -> None:
    hub = Hub()
    (slow, _), (fast, rf) = _sub("slow", size=2), _sub("fast", size=100)
    for sub in (slow, fast):
        hub.connect(sub)
        hub.subscribe("general", sub, RoomCursor(live=True))
    for seq in range(1, 11):
        hub.publish("general", f"m{seq}", seq)
    assert slow.close_code == CloseCode.SLOW_CONSUMER
    assert hub.subscribers("general") == 1 and not slow.rooms
    assert len(_drain(rf)) == 10
    stats = hub.statistics()
    assert stats.evictions == 1 and stats.max_queued <= 2


def test_hub_close_all_asks_every_connection_to_close() -> None:
    hub = Hub()
    subs = [_sub(str(i))[0] for i in range(3)]
    for sub in subs:
        hub.connect(sub)
    hub.close_all(CloseCode.RESTART)
    assert all(s.close_code == CloseCode.RESTART for s in subs)


def test_hub_pack_caps_chunk_size_and_reports_last_seq() -> None:
    events = [(f'{{"n":{i},"pad":"{"x" * 1000}"}}', i) for i in range(1, 301)]
    packed = list(pack(events))
    assert all(len(item) <= CHUNK_MAX_CHARS for item, _ in packed)
    assert [seq for _, seq in packed][-1] == 300
    assert all(isinstance(item, Chunk) for item, _ in packed)
    assert list(pack([("solo", 7)])) == [("solo", 7)]


def _budgeted(budget: int, size: int = 100) -> tuple[Subscriber, trio.MemoryReceiveChannel[str]]:
    send, receive = trio.open_memory_channel[str | bytes](size)
    return Subscriber("a", send, budget=budget, inbox=receive), receive  # type: ignore[return-value]


def test_hub_byte_budget_evicts_before_the_item_cap() -> None:
    hub = Hub()
    (slow, _), (fast, rf) = _budgeted(10_000), _budgeted(10**9)
    for sub in (slow, fast):
        hub.connect(sub)
        hub.subscribe("general", sub, RoomCursor(live=True))
    big = "x" * 3000
    for seq in range(1, 5):  # the fourth would make 12,000 characters
        hub.publish("general", big, seq)
    assert slow.close_code == CloseCode.SLOW_CONSUMER
    assert slow.used() == 0  # its queue was dropped with it
    stats = hub.statistics()  # fast has no write pump here: its 12,000 count until "sent"
    assert stats.max_queued_chars == 12_000 and stats.total_queued_chars == 12_000
    assert len(_drain(rf)) == 4


def test_hub_byte_account_adds_on_enqueue_and_takes_away_when_sent() -> None:
    sub, receive = _budgeted(1000)
    sub.pending.append("p" * 100)
    sub.pending_chars = 100
    sub.enqueue("q" * 300)  # the pending event moves to the outbox ahead of it
    assert (sub.queued_chars, sub.pending_chars, sub.used()) == (400, 0, 400)
    assert sub.has_room(600) and not sub.has_room(601)
    try:
        sub.enqueue("r" * 601)
    except trio.WouldBlock:
        pass
    else:
        raise AssertionError("over the budget must not queue")
    assert _drain(receive) == ["p" * 100, "q" * 300]
    sub.sent(400)
    assert sub.used() == 0
    sub.enqueue("s" * 5000)  # bigger than the budget: goes alone into an empty queue
    assert sub.used() == 5000 and not sub.has_room(1)


async def test_hub_wait_room_wakes_when_the_write_pump_makes_room() -> None:
    sub, _ = _budgeted(1000)
    sub.enqueue("x" * 900)
    woke = trio.Event()

    async def waiter() -> None:
        await sub.wait_room(500)
        woke.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        sub.sent(300)  # 600 + 500 > 1000: still no room
        await trio.testing.wait_all_tasks_blocked()
        assert not woke.is_set()
        sub.sent(200)  # 400 + 500 fits
        with trio.fail_after(1):
            await woke.wait()


async def test_hub_wait_room_returns_when_the_subscriber_closes() -> None:
    sub, _ = _budgeted(1000)
    sub.enqueue("x" * 900)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sub.wait_room, 500)
        await trio.testing.wait_all_tasks_blocked()
        sub.close(CloseCode.SLOW_CONSUMER)  # the waiter must not hang on a closed outbox
    assert sub.used() == 0


def test_hub_a_limit_below_the_budget_leaves_live_events_room() -> None:
    sub, _ = _budgeted(1000)
    sub.enqueue("r" * 500)  # a replay that filled its share (half the budget)
    assert not sub.has_room(1, limit=500)  # the replay waits
    assert sub.has_room(500)  # a live event, a reply or a ping still fits
    sub.enqueue("p" * 500)
    assert sub.close_code is None and sub.used() == 1000


def test_hub_never_skips_a_seq_for_a_live_subscriber() -> None:
    hub = Hub()
    (a, ra), (b, rb) = _sub("a"), _sub("b")
    for sub in (a, b):
        hub.connect(sub)
    hub.subscribe("general", a, RoomCursor(seq=5, live=True))
    hub.subscribe("general", b, RoomCursor(seq=6, live=True))
    hub.publish("general", "m7", 7)  # a lacks 6: it must not get 7 (and resume instead)
    assert _drain(rb) == ["m7"]
    assert _drain(ra) == [] and a.close_code == CloseCode.SLOW_CONSUMER
    assert hub.gaps == 1 and hub.subscribers("general") == 1


def test_hub_chunk_must_start_right_after_the_cursor() -> None:
    hub = Hub()
    a, ra = _sub("a")
    hub.connect(a)
    hub.subscribe("general", a, RoomCursor(seq=3, live=True))
    hub.publish("general", Chunk('"m4","m5"'), 5, 4)
    assert _drain(ra) == ['"m4","m5"']
    hub.publish("general", Chunk('"m7","m8"'), 8, 7)  # 6 missing
    assert _drain(ra) == [] and a.close_code == CloseCode.SLOW_CONSUMER


def test_hub_tells_the_broker_when_a_room_opens_and_closes() -> None:
    hub = Hub()
    events: list[tuple[str, str]] = []
    hub.room_opened = lambda room: events.append(("open", room))
    hub.room_closed = lambda room: events.append(("close", room))
    (a, _), (b, _) = _sub("a"), _sub("b")
    hub.subscribe("general", a, RoomCursor())
    hub.subscribe("general", b, RoomCursor())
    hub.unsubscribe("general", a)
    hub.disconnect(b)
    assert events == [("open", "general"), ("close", "general")]


def test_hub_flusher_lingers_as_long_as_its_last_round_took_when_busy() -> None:
    """Quiet: no linger (latency first). Busy: as long as the last round of writes took,
    within the floor and the cap, so a long round's successor carries more per frame."""
    assert linger_s(BUSY_WITHIN_S, 0.004) == 0.0
    assert linger_s(0.0, 0.004) == 0.004
    assert linger_s(0.0, 0.0001) == FLUSH_LINGER_S
    assert linger_s(BUSY_WITHIN_S / 2, 1.0) == FLUSH_LINGER_MAX_S


class _TimedSink:
    """A FrameSink (the kernel takes every frame whole) whose every write takes
    `write_s` of the mock clock, as a write to a socket takes real time."""

    def __init__(self, clock: trio.testing.MockClock, write_s: float, watch: bytes) -> None:
        self.clock, self.write_s, self.watch = clock, write_s, watch
        self.frames: list[bytes] = []
        self.times: list[float] = []  # when each frame went (mock clock)
        self.wrote = trio.Event()  # the first frame went
        self.got = trio.Event()  # a frame carrying `watch` went

    def send_nowait(self, data: bytes) -> int:
        self.clock.jump(self.write_s)
        self.frames.append(data)
        self.times.append(self.clock.current_time())
        self.wrote.set()
        if self.watch in data:
            self.got.set()
        return len(data)

    async def send_all(self, data: bytes) -> None:
        self.send_nowait(data)

    async def send_queued(self, data: bytes) -> None:
        self.send_nowait(data)


def _timed_subscribers(hub: Hub, clock: trio.testing.MockClock, n: int) -> list[_TimedSink]:
    """`n` live subscribers of general, each writing through a _TimedSink watching m2."""
    sinks = []
    for i in range(n):
        sub, _ = _sub(f"u{i}")
        sink = _TimedSink(clock, ROUND_SLICE_S / SLICE_CHECK_EVERY, watch=b"m2")
        sub.direct = sink
        sinks.append(sink)
        hub.connect(sub)
        hub.subscribe("general", sub, RoomCursor(seq=0, live=True))
    return sinks


async def test_hub_flusher_writes_a_round_in_slices_so_a_new_event_joins_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A round of writes yields to other tasks every ROUND_SLICE_S: an event published
    meanwhile reaches the subscribers the round has not written yet in that round (one
    frame with both events), not only after the whole round and the linger."""
    hub = Hub()
    sinks = _timed_subscribers(hub, autojump_clock, 3 * SLICE_CHECK_EVERY)  # the last after m2
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            hub.publish("general", "m1", 1)
            await sinks[0].wrote.wait()  # the round has begun
            hub.publish("general", "m2", 2)
            for sink in sinks:
                await sink.got.wait()
            nursery.cancel_scope.cancel()
    assert sinks[0].frames == [text_frame("m1"), text_frame("m2")]
    assert sinks[-1].frames == [text_frame("[m1,m2]")]
    assert hub.statistics().delivered == 2 * len(sinks)


class _Sink:
    """A FrameSink whose kernel takes every frame whole, at once."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send_nowait(self, data: bytes) -> int:
        self.frames.append(data)
        return len(data)

    async def send_all(self, data: bytes) -> None:
        self.frames.append(data)

    async def send_queued(self, data: bytes) -> None:
        self.frames.append(data)


def _direct(hub: Hub, name: str, seq: int = 0) -> tuple[Subscriber, _Sink]:
    sub, _ = _sub(name)
    sink = _Sink()
    sub.direct = sink
    hub.connect(sub)
    hub.subscribe("general", sub, RoomCursor(seq=seq, live=True))
    return sub, sink


async def test_hub_publish_leaves_direct_subscribers_to_the_flusher() -> None:
    """Publishing touches no direct subscriber (the cost once was a loop over every one
    of them per event): the flusher hands each its events when it writes to it."""
    hub = Hub()
    pairs = [_direct(hub, f"u{i}") for i in range(3)]
    hub.publish("general", "m1", 1)
    hub.publish("general", "m2", 2)
    assert all(not sub.pending and sub.rooms["general"].seq == 0 for sub, _ in pairs)
    assert hub.statistics().delivered == 0
    await hub._round()
    assert all(sink.frames == [text_frame("[m1,m2]")] for _, sink in pairs)
    assert all(sub.rooms["general"].seq == 2 for sub, _ in pairs)
    assert hub.statistics().delivered == 6
    hub.publish("general", "m3", 3)  # what the last round handed over is not kept
    await hub._round()
    assert all(sink.frames[-1] == text_frame("m3") for _, sink in pairs)


def test_hub_reply_goes_after_what_its_rooms_published_before() -> None:
    hub = Hub()
    sub, _ = _direct(hub, "a")
    hub.publish("general", "m1", 1)
    hub.send_to(sub, "ack")
    assert sub.pending == ["m1", "ack"]


def test_hub_unsubscribe_hands_over_what_was_published_before() -> None:
    hub = Hub()
    (a, _), (b, _) = _direct(hub, "a"), _direct(hub, "b")
    hub.publish("general", "m1", 1)
    hub.unsubscribe("general", a)
    assert a.pending == ["m1"] and not a.rooms
    hub.publish("general", "m2", 2)
    hub.subscribe("general", a, RoomCursor(seq=2, live=True))  # back: nothing from before
    hub.publish("general", "m3", 3)
    assert b.pending == [] and hub.statistics().delivered == 1
    hub.send_to(b, "ping")
    hub.send_to(a, "ping")
    assert b.pending == ["m1", "m2", "m3", "ping"] and a.pending == ["m1", "m3", "ping"]


def test_hub_flusher_hands_a_gap_as_an_eviction_and_a_replay_only_notes_seqs() -> None:
    hub = Hub()
    (a, _), (b, _) = _direct(hub, "a", seq=5), _direct(hub, "b", seq=6)
    c, _ = _sub("c")
    c.direct = _Sink()
    hub.connect(c)
    catching_up = RoomCursor(seq=3)
    hub.subscribe("general", c, catching_up)
    hub.publish("general", "m7", 7)
    hub.send_to(a, "x")  # a lacks 6: it must not get 7 (it resumes instead)
    hub.send_to(b, "x")
    hub.send_to(c, "x")
    assert a.close_code == CloseCode.SLOW_CONSUMER and hub.gaps == 1
    assert b.pending == ["m7", "x"] and c.pending == ["x"] and catching_up.seen == 7


async def test_hub_flusher_spreads_a_busy_rounds_linger_between_its_slices(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Busy (the last round just ended), the next round starts at once and pays its
    linger in pauses between slices (at least PAUSE_MIN_S each), not all before it: its
    writes spread out instead of going in one burst after a wait."""
    hub = Hub()
    sinks = _timed_subscribers(hub, autojump_clock, 6 * SLICE_CHECK_EVERY)  # 12 ms of writes
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            hub.publish("general", "m1", 1)
            await sinks[-1].wrote.wait()  # the first round (quiet: no linger) is done
            published = trio.current_time()
            hub.publish("general", "m2", 2)
            await sinks[-1].got.wait()
            nursery.cancel_scope.cancel()
    times = [sink.times[-1] for sink in sinks]  # when each wrote m2
    assert times[0] - published < ROUND_SLICE_S  # no linger before the round
    gaps = [b - a for a, b in pairwise(times)]
    pauses = [gap for gap in gaps if gap > ROUND_SLICE_S]
    assert pauses and all(pause >= PAUSE_MIN_S for pause in pauses)
    assert sum(pauses) <= FLUSH_LINGER_MAX_S + ROUND_SLICE_S
