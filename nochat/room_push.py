"""`room` events: a room a user can newly see is pushed to their sockets, so a client's
room list never needs polling.

Through the broker's node-wide signals, so it reaches the user's sockets on every node:
`room_created` when a room is made (a public one goes to everyone connected, a private
one to its creator), `membership_changed` when a user is added to a private room or a
DM is opened with them. The payload carries the room object as GET /api/rooms shows it
to `user` (the one who may now see it; the creator for `room_created`), read from the
store by the node that made the change (signal handlers never await, so they cannot
read it): a room someone was added to with messages already in it shows its real
`unread` and `mentions`, like their next GET /api/rooms will. Everyone else (a new
public room) gets it as a non-member: nothing read, nothing unread. Reaching a user's
sockets scans this node's connections: rooms are made far less often than messages
are sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import protocol
from .broker import SignalKind, SignalPayload
from .store import Room, RoomView, Store, User

if TYPE_CHECKING:
    from .services import Services

#: The room object's counters, as the signal payload carries them (strings).
_COUNTS = ("head_seq", "last_read", "unread", "mentions")


def room_event(room: dict[str, Any]) -> dict[str, Any]:
    """`room {room: <room object as in GET /api/rooms>}`."""
    return {"type": "room", "room": room}


async def view_for(store: Store, room: Room, user: User) -> RoomView:
    """`room` as `user`, a member, sees it in their room list (unread and mentions)."""
    views, _ = await store.rooms_for(user, after=None, limit=1)
    for view in views:
        if view.name == room.name:
            return view
    return RoomView(room.name, room.private, room.dm, True, room.head_seq, 0, 0)


def announce(services: Services, view: RoomView, user: str, *, created: bool) -> None:
    """Tell every node that `user` (and, for a new public room, everyone) can see the
    room `view` shows (as `user` sees it)."""
    payload = {
        "room": view.name,
        "private": "1" if view.private else "",
        "dm": "1" if view.dm else "",
        "user": user,
        **{name: str(getattr(view, name)) for name in _COUNTS},
    }
    kind = SignalKind.ROOM_CREATED if created else SignalKind.MEMBERSHIP_CHANGED
    services.broker.signal(kind, payload)


def _count(payload: SignalPayload, name: str) -> int:
    raw = payload.get(name, "0")
    return int(raw) if raw.isdigit() else 0


def install(services: Services) -> None:
    def deliver(payload: SignalPayload) -> None:
        private = bool(payload.get("private"))
        who = payload.get("user", "")
        base = {"name": payload.get("room", ""), "private": private, "dm": bool(payload.get("dm"))}
        counts = {name: _count(payload, name) for name in _COUNTS}
        theirs = protocol.encode(room_event({**base, "member": True, **counts}))
        unseen = {"head_seq": counts["head_seq"], "last_read": 0, "unread": 0, "mentions": 0}
        others = protocol.encode(room_event({**base, "member": False, **unseen}))
        for conns in list(services.connections.by_session.values()):
            for conn in list(conns):
                if conn.user.name == who:
                    conn.push(theirs)
                elif not private:
                    conn.push(others)

    services.broker.on_signal(SignalKind.ROOM_CREATED, deliver)
    services.broker.on_signal(SignalKind.MEMBERSHIP_CHANGED, deliver)
