"""Users' statuses (online/away/busy + text): cached while connected to this node.

The book caches each connected user's stored status, so a presence event can carry it
without a store read (presence events are built in code that never awaits), and
records when a user's last connection here went (their last-seen time).
"""

from __future__ import annotations

import logging
import secrets

import trio

from .broker import Broker, SignalKind, SignalPayload
from .broker.presence import PresenceBoard
from .errors import NoChatError
from .presence_feed import PresenceFeed
from .store import Store, User, UserStatus, now_ms

#: Longest a closing connection waits to store its user's last-seen time.
LAST_SEEN_WRITE_S = 2.0

log = logging.getLogger(__name__)


class StatusBook:
    def __init__(
        self, store: Store, presence: PresenceBoard, feed: PresenceFeed, broker: Broker
    ) -> None:
        self._store = store
        self._presence = presence
        self._feed = feed
        self._broker = broker
        #: Tells this node's own STATUS_CHANGED signals from other nodes'.
        self._origin = secrets.token_hex(8)
        #: The stored status of each user connected to this node (load); the feed reads it.
        self.cached = feed.statuses
        #: When users whose last connection here has ended were last seen, until stored.
        self._gone: dict[str, int] = {}
        broker.on_signal(SignalKind.STATUS_CHANGED, self._status_changed)

    async def load(self, user: User) -> None:
        """Cache the user's stored status while they are connected here.

        A status is decoration: a store that cannot answer (not open, closing) leaves the
        user plain `online` instead of failing their connection.
        """
        if user.name in self.cached:
            return
        try:
            self.cached[user.name] = await self._store.status(user)
        except NoChatError:
            log.info("status of a user not loaded (the store is unavailable)")

    async def set(self, user: User, state: str, text: str) -> UserStatus:
        """Store the status and tell every room the user is present in, on every node.

        A signal carries it to every node (this one at once): each updates its cache
        and tells its rooms, except the rooms this node told already (a user in one room
        through two nodes hears it once from here; through two *other* nodes, twice).
        """
        await self._store.set_status(user, state, text)
        old = self.cached.get(user.name)
        rooms = " ".join(self._presence.rooms_of(user.name))
        payload = {"user": user.name, "state": state, "text": text, "rooms": rooms}
        self._broker.signal(SignalKind.STATUS_CHANGED, {**payload, "origin": self._origin})
        return UserStatus(user.name, state, text, old.last_seen if old else None)

    def _status_changed(self, payload: SignalPayload) -> None:
        name = payload["user"]
        if not self._presence.connections_of(name):
            return
        old = self.cached.get(name)
        last_seen = old.last_seen if old else None
        self.cached[name] = UserStatus(name, payload["state"], payload["text"], last_seen)
        told = set() if payload["origin"] == self._origin else set(payload["rooms"].split())
        for room in self._presence.rooms_of(name):
            if room not in told:
                self._feed.announce(room, name, "online")

    async def reload(self, user: User) -> None:
        """Read a connected user's status again (signals may have been missed, resync.py);
        their rooms here are told if it changed."""
        old = self.cached.get(user.name)
        if old is None:
            return
        try:
            stored = await self._store.status(user)
        except NoChatError:
            return
        if (stored.state, stored.text) != (old.state, old.text) and user.name in self.cached:
            self.cached[user.name] = UserStatus(user.name, stored.state, stored.text, old.last_seen)
            for room in self._presence.rooms_of(user.name):
                self._feed.announce(room, user.name, "online")

    async def of(self, user: User) -> UserStatus:
        """`offline` unless connected (to any node); else the stored status."""
        stored = await self._store.status(user)
        if not await self._presence.is_online(user.name):
            seen = max(stored.last_seen or 0, self._gone.get(user.name, 0)) or None
            return UserStatus(user.name, "offline", stored.text, seen)
        return UserStatus(user.name, stored.state, stored.text, now_ms())

    def connection_gone(self, user: User) -> None:
        """At unregister, before any await: when the user's last connection here ended
        is known at once (`of` reports it), not only once `connection_ended` stored it."""
        if not self._presence.connections_of(user.name):
            self._gone[user.name] = now_ms()

    async def connection_ended(self, user: User) -> None:
        """After unregister: the user's last connection here records when they were seen."""
        if self._presence.connections_of(user.name):
            return
        self.cached.pop(user.name, None)
        seen = self._gone.get(user.name, now_ms())
        with trio.move_on_after(LAST_SEEN_WRITE_S, shield=True):
            try:
                await self._store.set_last_seen(user, seen)
            except NoChatError:
                log.info("last seen of a user not stored (the store is closing)")
        if self._gone.get(user.name) == seen:
            del self._gone[user.name]
