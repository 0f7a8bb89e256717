"""The Broker protocol: how room events and node-wide signals reach every node's hub.

A broker carries two things. Room events (`publish`): encoded once by the publisher,
delivered to the hub of every node that has subscribers in the room, each room strictly
in `seq` order (the Sequencer, sequencer.py). And signals (`signal`): small typed notes
every node must see (a session ended, so its sockets close 4001, wherever they are).
`LocalBroker` does both in-process; `RedisBroker` (redis.py) over Redis pub/sub. The
services make the same calls with either: they never know which one they hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import trio

from .sequencer import FetchHead as FetchHead
from .sequencer import FetchRange as FetchRange

if TYPE_CHECKING:
    from ..hub import Hub
    from ..settings import Settings
    from .presence import PresenceBoard


class BrokerStatus(StrEnum):
    """`degraded`: the node serves (local delivery, durable sends) but other nodes'
    events do not reach it, and its own do not reach them, until the broker reconnects."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"


class SignalKind(StrEnum):
    """Node-wide signals. Payload keys, all strings: session_ended {session};
    membership_changed {room, user}; room_created {room}; presence {room, user, state};
    status_changed {user, state, text, rooms (space-separated, the rooms the origin told),
    origin} (status_book.py).
    room_push.py adds private, dm, head_seq to membership_changed and room_created (and
    `user`, the creator, to room_created). Admin decisions (moderation.py):
    account_changed {user (id), close (a close code, or "")}; connection_closed {id};
    member_removed {room, user (id)}; room_changed {room, gone ("1" or "")};
    connections_wanted {ask}; connections_listed {ask, node, connections (JSON)}
    (census.py)."""

    SESSION_ENDED = "session_ended"
    MEMBERSHIP_CHANGED = "membership_changed"
    ROOM_CREATED = "room_created"
    PRESENCE = "presence"
    STATUS_CHANGED = "status_changed"
    ACCOUNT_CHANGED = "account_changed"
    CONNECTION_CLOSED = "connection_closed"
    MEMBER_REMOVED = "member_removed"
    ROOM_CHANGED = "room_changed"
    CONNECTIONS_WANTED = "connections_wanted"
    CONNECTIONS_LISTED = "connections_listed"
    #: {why}: this node may have missed signals (resync.py re-reads what they change). The
    #: Redis broker dispatches it here after every connect, and sends it to every node
    #: when a signal of its own was lost on the way out.
    RESYNC = "resync"


@dataclass(frozen=True, slots=True)
class BrokerStatistics:
    """Counters since start (Prometheus reads them: nochat/broker/metrics.py)."""

    status: BrokerStatus
    #: Items that arrived ahead of their room's next seq and waited.
    held: int
    #: Gaps read from the store (each one store read).
    gap_fills: int
    #: Items already delivered (or read from the store) when they came.
    duplicates: int
    #: Items and signals the Redis buffer had no room for, or lost with a connection.
    dropped: int = 0
    sent: int = 0
    received: int = 0
    connects: int = 0
    #: Items waiting to be published now (the broker's lag, in events).
    queued: int = 0


SignalPayload = Mapping[str, str]
#: Runs on every node (the sender's included, at once) for each signal of its kind.
SignalHandler = Callable[[SignalPayload], None]


class Broker(Protocol):
    def publish(
        self, room: str, encoded: str, seq: int | None = None, first: int | None = None
    ) -> None:
        """Deliver an encoded event to the room's subscribers on every node. Never awaits.

        `seq` is the (last) seq the item carries and `first` the first, when the item is
        a Chunk of several events (None: just `seq`); events without seq (presence,
        typing) pass straight through, unordered.
        """
        ...

    def subscribe(self, room: str) -> None:
        """This node now has local subscribers in `room`: deliver its events here."""
        ...

    def unsubscribe(self, room: str) -> None:
        """The last local subscriber of `room` has gone: stop delivering its events here."""
        ...

    def head(self, room: str) -> int | None:
        """The last seq of `room` this node's hub has been given (None: the room is not
        open here, or where it starts is not known yet). A joining subscriber is caught
        up once it has read the store up to here."""
        ...

    async def wait_head(self, room: str) -> int | None:
        """`head(room)` once it is known (None: the room is not open here). It becomes
        known once the room's events reach this node (with Redis: after SUBSCRIBE) and
        the store's head has been read; callers bound the wait (Redis may be down)."""
        ...

    def signal(self, kind: SignalKind, payload: SignalPayload) -> None:
        """Tell every node (this one at once). Never awaits; best effort across nodes."""
        ...

    def on_signal(self, kind: SignalKind, handler: SignalHandler) -> None:
        """Call `handler` for every signal of `kind`, from any node."""
        ...

    async def nodes(self) -> int:
        """How many nodes share this broker now, this one included (at least 1): those a
        signal reaches. Callers bound the wait (Redis may be down)."""
        ...

    @property
    def status(self) -> BrokerStatus: ...

    def statistics(self) -> BrokerStatistics: ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The broker's tasks (ordering timers, gap fills, Redis I/O), until cancelled."""
        ...


def open_broker(
    settings: Settings, hub: Hub, *, fetch_range: FetchRange, fetch_head: FetchHead
) -> Broker:
    """The broker the settings ask for: Redis when `redis_url` is set, else local.

    The Redis broker is imported only then, so a single node needs no coredis.
    """
    if settings.redis_url:
        from .redis import RedisBroker

        return RedisBroker(
            settings.redis_url,
            hub,
            fetch_range=fetch_range,
            fetch_head=fetch_head,
            hold_s=settings.broker_hold_s,
            buffer=settings.broker_buffer,
        )
    from .local import LocalBroker

    return LocalBroker(
        hub, fetch_range=fetch_range, fetch_head=fetch_head, hold_s=settings.broker_hold_s
    )


def open_presence(settings: Settings) -> PresenceBoard:
    """Who is online: over every node in Redis when `redis_url` is set, else this process."""
    if settings.redis_url:
        from .presence_redis import RedisPresence

        return RedisPresence(
            settings.redis_url,
            lease_s=settings.presence_lease_s,
            refresh_s=settings.presence_refresh_s,
        )
    from .presence import LocalPresence

    return LocalPresence()
