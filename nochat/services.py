"""The app's services in one typed object, and the room rules every path shares."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from . import events, protocol, room_push
from .addresses import ClientAddresses
from .auth import Authenticator
from .broker import Broker, SignalKind, SignalPayload
from .errors import CloseCode, NoChatError, NotFound, RateLimited, Unavailable
from .hub import Hub, pack
from .keepalive import Keepalive
from .limits import EventWindow, FailureThrottle, KeyedSlots, LoginThrottle, TypingGate, UserBuckets
from .metrics import Counters
from .presence import Presence
from .settings import Settings
from .store import Event, Room, Session, Store, User, UserStatus, now_ms

#: How often a big room's presence changes go out together.
PRESENCE_BATCH_S = 0.25
#: The window NOCHAT_SIGNUP_RATE_PER_H counts sign-ups in.
SIGNUP_WINDOW_S = 3600.0
#: In a room of more than `presence_batch_above` subscribers, most `typing` events that go
#: out per typing interval (each costs one delivery per socket in the room).
ROOM_TYPING_MAX = 10
#: Longest a closing connection waits to store its user's last-seen time.
LAST_SEEN_WRITE_S = 2.0

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .connection import Connection


@dataclass(eq=False)
class Services:
    settings: Settings
    store: Store
    hub: Hub
    broker: Broker
    presence: Presence
    auth: Authenticator
    counters: Counters = field(default_factory=Counters)
    keepalive: Keepalive = field(default_factory=Keepalive)
    shutting_down: bool = False
    #: Open connections by the session that opened them (logout and refresh reach them).
    by_session: dict[str, set[Connection]] = field(default_factory=dict)
    login_throttle: LoginThrottle = field(init=False)
    #: Sign-ups per client address per hour (every attempt counts, in flight ones too).
    signup_throttle: FailureThrottle = field(init=False)
    addresses: ClientAddresses = field(init=False)
    #: REST sends of each user share one bucket (a socket's sends have their own).
    rest_sends: UserBuckets = field(init=False)
    room_creations: EventWindow = field(init=False)
    #: Per user: how many joins may replay missed messages at once.
    replays: KeyedSlots = field(init=False)
    typing_gate: TypingGate = field(init=False)
    _rooms: dict[str, Room] = field(default_factory=dict)
    _presence_pending: dict[str, dict[str, str]] = field(default_factory=dict)
    _presence_wake: trio.Event = field(default_factory=trio.Event)
    _members: set[tuple[int, int]] = field(default_factory=set)
    #: The stored status of each user connected to this node (load_status).
    statuses: dict[str, UserStatus] = field(default_factory=dict)
    #: When a user's last connection here ended, until the store has it (user_status).
    _seen: dict[str, int] = field(default_factory=dict)
    #: Set when the last connection has gone during shutdown.
    drained: trio.Event = field(default_factory=trio.Event)

    def __post_init__(self) -> None:
        settings = self.settings
        self.login_throttle = LoginThrottle(
            settings.login_failures,
            settings.login_name_failures,
            settings.login_address_failures,
            settings.login_window_s,
        )
        self.signup_throttle = FailureThrottle(settings.signup_rate_per_h, SIGNUP_WINDOW_S)
        self.addresses = ClientAddresses(settings.trusted_proxies)
        self.rest_sends = UserBuckets(settings.send_rate_per_s, settings.send_burst)
        self.room_creations = EventWindow(settings.room_creations_per_hour, 3600.0)
        self.replays = KeyedSlots(settings.replays_per_user)
        self.typing_gate = TypingGate(
            settings.typing_interval_s, ROOM_TYPING_MAX, settings.presence_batch_above
        )
        self.broker.on_signal(SignalKind.SESSION_ENDED, self._session_ended)
        room_push.install(self)

    def on_commit(self, batch: Sequence[Event]) -> None:
        """Store writer → broker: each room's share of one commit goes out as one item.

        Every event (a message, edit, delete or reaction) is encoded exactly once. A
        commit's events for one room travel as one `Chunk` carrying the highest seq, so
        a burst costs each subscriber one outbox slot, and a healthy client is never
        evicted for the size of a group commit. A commit is atomic, so a reader's
        snapshot never ends inside one: no subscriber can hold part of a chunk already.
        """
        rooms: dict[str, list[tuple[str, int]]] = {}
        for e in batch:
            rooms.setdefault(e.room, []).append((protocol.encode(events.log_event(e)), e.seq))
        publish = self.broker.publish
        for room, encoded in rooms.items():
            first = encoded[0][1]  # a commit's events of one room have consecutive seqs
            for item, last_seq in pack(encoded):
                publish(room, item, last_seq, first)
                first = last_seq + 1

    async def visible_room(self, user: User, name: str) -> Room:
        """The room if `user` may read and write it; NotFound otherwise (names never leak).

        Rooms never change once made and members are never removed, so both are cached:
        a join or send costs no store round trip after the first.
        """
        room = self._rooms.get(name)
        if room is None and protocol.valid_room(name):
            room = await self.store.room(name)
            if room is not None:
                self._rooms[name] = room
        if room is None or (room.private and not await self.is_member(room, user)):
            raise NotFound(f"no room {name!r}")
        return room

    async def is_member(self, room: Room, user: User) -> bool:
        if (room.id, user.id) in self._members:
            return True
        if await self.store.is_member(room, user):
            self._members.add((room.id, user.id))
            return True
        return False

    async def ensure_member(self, room: Room, user: User) -> None:
        """Make `user` a member (public rooms on join: so they count unread); once."""
        if (room.id, user.id) not in self._members:
            await self.store.add_member(room, user)
            self._members.add((room.id, user.id))

    def room_made(self, room: Room, *members: User) -> None:
        self._rooms[room.name] = room
        self._members.update((room.id, m.id) for m in members)

    def announce_presence(self, room: str, user: str, state: str) -> None:
        """Tell the room `user` came online or went offline.

        In a room of more than `presence_batch_above` subscribers, changes are collected
        and sent together every PRESENCE_BATCH_S (latest state per user): a storm of N
        users joining a room of N would otherwise cost N² deliveries. A room with changes
        waiting keeps batching, so an older state never overtakes a newer one.
        """
        pending = self._presence_pending
        if room not in pending and (
            self.hub.subscribers(room) <= self.settings.presence_batch_above
        ):
            self.broker.publish(room, protocol.encode(self._presence(room, user, state)))
            return
        pending.setdefault(room, {})[user] = state
        self._presence_wake.set()

    async def run_presence(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Send the batched presence changes of big rooms, once per PRESENCE_BATCH_S."""
        task_status.started()
        while True:
            await self._presence_wake.wait()
            await trio.sleep(PRESENCE_BATCH_S)
            self._presence_wake = trio.Event()
            pending, self._presence_pending = self._presence_pending, {}
            for room, states in pending.items():
                encoded = [
                    (protocol.encode(self._presence(room, user, state)), 0)
                    for user, state in states.items()
                ]
                for item, _ in pack(encoded):
                    self.broker.publish(room, item)

    def _presence(self, room: str, user: str, state: str) -> dict[str, Any]:
        """A presence event: a user who comes online shows their status (away, busy)."""
        status = self.statuses.get(user)
        text = status.text if status is not None and state != "offline" else ""
        if state == "online" and status is not None:
            state = status.state
        return events.presence_event(room, user, state, text, now_ms())

    async def load_status(self, user: User) -> None:
        """Cache the user's stored status while they are connected here. Best effort: a
        store that cannot answer now costs the status (shown as online), not the socket."""
        if user.name not in self.statuses:
            try:
                self.statuses[user.name] = await self.store.status(user)
            except NoChatError:
                log.warning("a user's status could not be read; shown as online")

    async def set_status(self, user: User, state: str, text: str) -> UserStatus:
        """Store the status and tell every room the user is present in on this node."""
        await self.store.set_status(user, state, text)
        old = self.statuses.get(user.name)
        status = UserStatus(user.name, state, text, old.last_seen if old else None)
        if self.presence.connections_of(user.name):
            self.statuses[user.name] = status
            for room in self.presence.rooms_of(user.name):
                self.announce_presence(room, user.name, "online")
        return status

    async def user_status(self, user: User) -> UserStatus:
        """`offline` unless connected (to this node); else the stored status."""
        stored = await self.store.status(user)
        if not self.presence.connections_of(user.name):
            seen = max(stored.last_seen or 0, self._seen.get(user.name, 0)) or None
            return UserStatus(user.name, "offline", stored.text, seen)
        return UserStatus(user.name, stored.state, stored.text, now_ms())

    def last_seen_now(self, user: User) -> None:
        """After unregister: note when the user's last connection here ended."""
        if not self.presence.connections_of(user.name):
            self._seen[user.name] = now_ms()

    async def connection_ended(self, user: User) -> None:
        """After unregister: the user's last connection here records when they were seen."""
        if self.presence.connections_of(user.name):
            return
        self.statuses.pop(user.name, None)
        seen = self._seen.setdefault(user.name, now_ms())
        with trio.move_on_after(LAST_SEEN_WRITE_S, shield=True):
            try:
                await self.store.set_last_seen(user, seen)
            except NoChatError:
                log.info("last seen of a user not stored (the store is closing)")
        if self._seen.get(user.name) == seen:
            del self._seen[user.name]

    def admit(self, user: User) -> None:
        """Refuse a handshake the caps do not allow (call right before `Connection.serve`)."""
        if self.shutting_down:
            raise Unavailable("the server is shutting down")
        if self.hub.connection_count() >= self.settings.max_connections:
            raise Unavailable("the server is at its connection limit")
        if self.presence.connections_of(user.name) >= self.settings.max_connections_per_user:
            raise RateLimited("too many open connections for this user", retry_after_s=5.0)

    def register(self, conn: Connection) -> None:
        self.hub.connect(conn.sub)
        self.presence.connect(conn.user.name)
        self.by_session.setdefault(conn.session.id, set()).add(conn)

    def unregister(self, conn: Connection) -> None:
        self.hub.disconnect(conn.sub)
        self.presence.disconnect(conn.user.name)
        conns = self.by_session.get(conn.session.id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.by_session[conn.session.id]
        self.connection_closed()

    def end_session(self, session_id: str) -> None:
        """Logout: every socket opened with this session, on every node, closes with 4001."""
        self.broker.signal(SignalKind.SESSION_ENDED, {"session": session_id})

    def _session_ended(self, payload: SignalPayload) -> None:
        for conn in self.by_session.get(payload["session"], ()):
            conn.sub.close(CloseCode.TOKEN_EXPIRED)

    def session_extended(self, session: Session) -> None:
        for conn in self.by_session.get(session.id, ()):
            conn.extend(session.expires_at_ms)

    def begin_shutdown(self) -> None:
        """Refuse new work and ask every connection to close with 1012."""
        self.shutting_down = True
        self.hub.close_all(CloseCode.RESTART)
        if self.hub.connection_count() == 0:
            self.drained.set()

    def connection_closed(self) -> None:
        if self.shutting_down and self.hub.connection_count() == 0:
            self.drained.set()
