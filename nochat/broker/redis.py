"""RedisBroker: room events and node-wide signals over Redis pub/sub (coredis, on Trio).

Policy. Redis carries events between nodes but is trusted with nothing durable: the
store is. So:
- `publish` never awaits: the node's own event goes through its Sequencer to its hub at
  once, and into a bounded buffer that the sender task drains with PUBLISH to the room's
  channel. A full buffer drops the event (counted): other nodes fill the gap from the
  store after `hold_s`.
- Every message carries the origin node id (a node skips its own: it delivered them
  already) and the seqs, so receivers order them (sequencer.py).
- The subscriber task holds SUBSCRIBE for the rooms with local subscribers and for the
  signals channel. After every (re)connect it asks the store for each room's head and
  backfills through the Sequencer: whatever Redis lost while down is delivered, in order.
- While Redis is down the node keeps serving (local delivery, durable sends and acks),
  `status` is `degraded`, and it reconnects with exponential backoff and full jitter.
- Signals are not in the store: after every connect this node dispatches `resync` to
  itself (resync.py re-reads what signals it missed would have changed), and a node
  that lost a signal of its own on the way out sends `resync` to every node.

Wire format, one text message: `<origin> <first|-> <last|-> <s|c>\n<encoded>` on
`nochat:room:<room>` (`c`: a Chunk of several events), `<origin> <kind>\n<json>` on
`nochat:signals`.
"""

from __future__ import annotations

import json
import logging
import random
import secrets

import coredis
import coredis.exceptions
import trio
from coredis.response.types import PubSubMessage
from coredis.retry import NoRetryPolicy

from ..hub import Hub
from ..protocol import Chunk
from . import (
    BrokerStatistics,
    BrokerStatus,
    FetchHead,
    FetchRange,
    SignalHandler,
    SignalKind,
    SignalPayload,
)
from .sequencer import Sequencer
from .signals import Signals

log = logging.getLogger(__name__)

ROOM_CHANNEL_PREFIX = "nochat:room:"
SIGNALS_CHANNEL = "nochat:signals"
#: Reconnect delays: uniform in [0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt)].
BACKOFF_BASE_S = 0.1
BACKOFF_MAX_S = 10.0
#: What a lost or refused Redis connection raises.
REDIS_ERRORS = (coredis.exceptions.RedisError, OSError, TimeoutError)


class RedisBroker:
    def __init__(
        self,
        url: str,
        hub: Hub,
        *,
        fetch_range: FetchRange,
        fetch_head: FetchHead,
        hold_s: float,
        buffer: int,
        node_id: str | None = None,
    ) -> None:
        self.url = url
        self.node_id = node_id or secrets.token_hex(8)
        self.sequencer = Sequencer(hub.publish, fetch_range, hold_s=hold_s)
        self._fetch_head = fetch_head
        self._signals = Signals()
        self._outgoing, self._to_send = trio.open_memory_channel[tuple[str, str]](buffer)
        self._wanted: set[str] = set()
        #: Rooms whose store head is to be read once subscribed (new, or after a reconnect).
        self._needs_head: set[str] = set()
        self._changed = trio.Event()
        self._synced = trio.Event()
        self._status = BrokerStatus.DEGRADED
        self._status_changed = trio.Event()
        self._attempt = 0
        self.dropped = 0
        self.sent = 0
        self.received = 0
        self.connects = 0
        #: A signal of this node's never reached Redis: every node resyncs once it can.
        self._signal_lost = False

    @property
    def status(self) -> BrokerStatus:
        return self._status

    def statistics(self) -> BrokerStatistics:
        s = self.sequencer
        return BrokerStatistics(
            self._status,
            s.held,
            s.filled,
            s.duplicates,
            dropped=self.dropped,
            sent=self.sent,
            received=self.received,
            connects=self.connects,
            queued=self._to_send.statistics().current_buffer_used,
        )

    def publish(
        self, room: str, encoded: str, seq: int | None = None, first: int | None = None
    ) -> None:
        self.sequencer.offer(room, encoded, seq, first)
        last = "-" if seq is None else str(seq)
        start = last if first is None else str(first)
        form = "c" if isinstance(encoded, Chunk) else "s"
        self._queue(ROOM_CHANNEL_PREFIX + room, f"{self.node_id} {start} {last} {form}\n{encoded}")

    def head(self, room: str) -> int | None:
        return self.sequencer.head(room)

    async def wait_head(self, room: str) -> int | None:
        return await self.sequencer.wait_head(room)

    def signal(self, kind: SignalKind, payload: SignalPayload) -> None:
        self._signals.dispatch(kind, payload)
        self._queue(SIGNALS_CHANNEL, f"{self.node_id} {kind.value}\n{json.dumps(dict(payload))}")

    def on_signal(self, kind: SignalKind, handler: SignalHandler) -> None:
        self._signals.on(kind, handler)

    async def nodes(self) -> int:
        """The signals channel's subscribers (PUBSUB NUMSUB): one per node, this one too
        once subscribed. A connection of its own: admins ask rarely. With Redis down no
        other node can be reached anyway: 1."""
        client = coredis.Redis.from_url(
            self.url, decode_responses=True, retry_policy=NoRetryPolicy()
        )
        counts: dict[str, int] = {}
        try:
            async with client:
                counts = await client.pubsub_numsub(SIGNALS_CHANNEL)
        except* REDIS_ERRORS:  # coredis raises them in a group from its own tasks
            log.warning("cannot count the nodes: Redis is unreachable")
        return max(1, int(counts.get(SIGNALS_CHANNEL, 0)))

    def subscribe(self, room: str) -> None:
        self._wanted.add(room)
        self._needs_head.add(room)
        self.sequencer.open(room)
        self._change()

    def unsubscribe(self, room: str) -> None:
        self._wanted.discard(room)
        self._needs_head.discard(room)
        self.sequencer.close(room)
        self._change()

    async def wait_status(self, status: BrokerStatus) -> None:
        while self._status is not status:
            await self._status_changed.wait()

    async def wait_synced(self) -> None:
        """Until Redis holds exactly the subscriptions asked for, heads read (tests)."""
        await self._synced.wait()

    def _queue(self, channel: str, message: str) -> None:
        try:
            self._outgoing.send_nowait((channel, message))
        except trio.WouldBlock:
            self.dropped += 1
            if channel == SIGNALS_CHANNEL:
                self._signal_lost = True

    def _change(self) -> None:
        self._changed.set()
        if self._synced.is_set():
            self._synced = trio.Event()

    def _set_status(self, status: BrokerStatus) -> None:
        if status is not self._status:
            log.info("broker %s", status.value)
            self._status = status
            self._status_changed.set()
            self._status_changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve, and on any loss reconnect with backoff, until cancelled.

        Starts at once, degraded, even when Redis is down: the node serves meanwhile.
        """
        async with trio.open_nursery() as nursery:
            await nursery.start(self.sequencer.run)
            task_status.started()
            while True:
                try:
                    await self._session()
                except* REDIS_ERRORS as group:
                    log.warning("lost Redis (%s); reconnecting", _first_error(group))
                self._set_status(BrokerStatus.DEGRADED)
                cap = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**self._attempt)
                self._attempt = min(self._attempt + 1, 32)
                await trio.sleep(random.uniform(0, cap))

    async def _session(self) -> None:
        """One connection's life: subscriber, sender and subscription keeper."""
        client = coredis.Redis.from_url(
            self.url, decode_responses=True, retry_policy=NoRetryPolicy()
        )
        async with (
            client,
            client.pubsub(
                channels=[SIGNALS_CHANNEL], ignore_subscribe_messages=True, retry_policy=None
            ) as pubsub,
            trio.open_nursery() as nursery,
        ):
            self.connects += 1
            self._needs_head |= self._wanted  # backfill what went by while disconnected
            self._change()
            # Subscribed to the signals first, then re-read what missed ones would change.
            self._signals.dispatch(SignalKind.RESYNC, {"why": "connected to Redis"})
            if self._signal_lost:
                why = json.dumps({"why": "a node lost a signal"})
                await client.publish(SIGNALS_CHANNEL, f"{self.node_id} {SignalKind.RESYNC}\n{why}")
                self._signal_lost = False
            nursery.start_soon(self._keep_subscriptions, pubsub)
            nursery.start_soon(self._send, client)
            async for message in pubsub:
                self._receive(message)
            raise coredis.exceptions.ConnectionError("subscription ended")

    async def _keep_subscriptions(self, pubsub: coredis.patterns.pubsub.PubSub[str]) -> None:
        subscribed: set[str] = set()
        while True:
            self._changed = trio.Event()
            wanted = set(self._wanted)
            if add := wanted - subscribed:
                await pubsub.subscribe(*(ROOM_CHANNEL_PREFIX + room for room in add))
                subscribed |= add
            if drop := subscribed - wanted:
                await pubsub.unsubscribe(*(ROOM_CHANNEL_PREFIX + room for room in drop))
                subscribed -= drop
            # Subscribed first, head second: nothing committed in between falls through.
            heads = self._needs_head & subscribed
            self._needs_head -= heads
            await self.sequencer.read_heads(heads, self._fetch_head)
            self._attempt = 0
            self._set_status(BrokerStatus.HEALTHY)
            if not self._changed.is_set():
                self._synced.set()
                await self._changed.wait()

    async def _send(self, client: coredis.Redis[str]) -> None:
        while True:
            channel, message = await self._to_send.receive()
            try:
                await client.publish(channel, message)
            except REDIS_ERRORS:
                self.dropped += 1  # lost with the connection; receivers fill from the store
                if channel == SIGNALS_CHANNEL:
                    self._signal_lost = True  # …and resync when told (resync.py)
                raise
            self.sent += 1

    def _receive(self, message: PubSubMessage) -> None:
        if message["type"] != "message":
            return
        channel = str(message["channel"])
        header, _, body = str(message["data"]).partition("\n")
        try:
            if channel == SIGNALS_CHANNEL:
                origin, kind = header.split(" ")
                if origin != self.node_id:
                    self.received += 1
                    self._signals.dispatch(SignalKind(kind), json.loads(body))
                return
            origin, start, last, form = header.split(" ")
            if origin == self.node_id or not channel.startswith(ROOM_CHANNEL_PREFIX):
                return
            self.received += 1
            room = channel[len(ROOM_CHANNEL_PREFIX) :]
            encoded = Chunk(body) if form == "c" else body
            if last == "-":
                self.sequencer.offer(room, encoded, None)
            else:
                self.sequencer.offer(room, encoded, int(last), int(start))
        except (ValueError, KeyError):
            log.warning("ignoring a malformed message on %s", channel)


def _first_error(group: BaseExceptionGroup[BaseException]) -> str:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return type(leaf).__name__
