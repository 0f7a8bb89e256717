"""The PresenceBoard contract (who is online, over every node) and its one-process board.

Connections tell the board when a user connects, disconnects, enters or leaves a room;
the board decides when the room hears `presence` (through `announce`, which the services
point at the PresenceFeed): once per user, however many sockets and nodes they use.
`LocalPresence` counts this process only (one node, today's behaviour exactly);
`RedisPresence` (presence_redis.py) counts every live node through per-node leases.
"""

from __future__ import annotations

from typing import Protocol

import trio

from ..presence import Presence

Summary = dict[str, list[str] | int]


class Announce(Protocol):
    def __call__(self, room: str, user: str, state: str, *, batch: bool = False) -> None:
        """Tell `room` that `user` is now `state` ("online" / "offline"); `batch`: many
        such changes come at once (a dead node's users), send them together."""
        ...


def ignore(room: str, user: str, state: str, *, batch: bool = False) -> None:
    """The announce of a board nobody listens to yet."""


class PresenceBoard(Protocol):
    #: Where presence changes go (the services set it to the PresenceFeed's announce).
    announce: Announce

    def connect(self, user: str) -> None:
        """One more socket of `user` on this node (online for `is_online`)."""
        ...

    def disconnect(self, user: str) -> None: ...

    def enter(self, room: str, user: str) -> None:
        """One more socket of `user` in `room` here; announces `online` if they were not."""
        ...

    def leave(self, room: str, user: str) -> None:
        """One socket fewer; announces `offline` when no node has them in the room."""
        ...

    async def online_summary(self, room: str, most: int) -> Summary:
        """`online`: up to `most` names present in `room` (sorted); `online_count`: all."""
        ...

    async def is_online(self, user: str) -> bool:
        """Whether `user` has a socket on any live node."""
        ...

    def connections_of(self, user: str) -> int:
        """Sockets of `user` on this node (the per-node connection cap counts these)."""
        ...

    def rooms_of(self, user: str) -> list[str]:
        """The rooms `user` is present in on this node."""
        ...

    def online_users(self) -> int:
        """Distinct users with a socket on this node."""
        ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The board's tasks (Redis: lease, sync, reaping), until cancelled."""
        ...


class LocalPresence:
    """One process: this process's counts are the whole truth, and changes go out at once."""

    def __init__(self) -> None:
        self.local = Presence()
        self.announce: Announce = ignore

    def connect(self, user: str) -> None:
        self.local.connect(user)

    def disconnect(self, user: str) -> None:
        self.local.disconnect(user)

    def enter(self, room: str, user: str) -> None:
        if self.local.enter(room, user):
            self.announce(room, user, "online")

    def leave(self, room: str, user: str) -> None:
        if self.local.leave(room, user):
            self.announce(room, user, "offline")

    async def online_summary(self, room: str, most: int) -> Summary:
        return self.local.online_summary(room, most)

    async def is_online(self, user: str) -> bool:
        return self.local.connections_of(user) > 0

    def connections_of(self, user: str) -> int:
        return self.local.connections_of(user)

    def rooms_of(self, user: str) -> list[str]:
        return self.local.rooms_of(user)

    def online_users(self) -> int:
        return self.local.online_users()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()
