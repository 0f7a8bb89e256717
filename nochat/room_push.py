"""`room` events: a room a user can newly see is pushed to their sockets, so a client's
room list never needs polling.

Through the broker's node-wide signals, so it reaches the user's sockets on every node:
`room_created` when a room is made (a public one goes to everyone connected, a private
one to its creator), `membership_changed` when a user is added to a private room or a
DM is opened with them. The payload carries what the room object needs (signal
handlers never await, so they cannot read the store): name, private, dm, head_seq,
and `user` (the one who may now see it; the creator for `room_created`). Reaching a
user's sockets scans this node's connections: rooms are made far less often than
messages are sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import protocol
from .broker import SignalKind, SignalPayload
from .store import Room

if TYPE_CHECKING:
    from .services import Services


def room_event(room: dict[str, Any]) -> dict[str, Any]:
    """`room {room: <room object as in GET /api/rooms>}`."""
    return {"type": "room", "room": room}


def announce(services: Services, room: Room, head_seq: int, user: str, *, created: bool) -> None:
    """Tell every node that `user` (and, for a new public room, everyone) can see `room`."""
    payload = {
        "room": room.name,
        "private": "1" if room.private else "",
        "dm": "1" if room.dm else "",
        "head_seq": str(head_seq),
        "user": user,
    }
    kind = SignalKind.ROOM_CREATED if created else SignalKind.MEMBERSHIP_CHANGED
    services.broker.signal(kind, payload)


def install(services: Services) -> None:
    def deliver(payload: SignalPayload) -> None:
        private = bool(payload.get("private"))
        who = payload.get("user", "")
        head = payload.get("head_seq", "0")
        view = {
            "name": payload.get("room", ""),
            "private": private,
            "dm": bool(payload.get("dm")),
            "member": False,
            "head_seq": int(head) if head.isdigit() else 0,
            "last_read": 0,
            "unread": 0,
            "mentions": 0,
        }
        theirs = protocol.encode(room_event({**view, "member": True}))
        others = protocol.encode(room_event(view))
        for conns in list(services.connections.by_session.values()):
            for conn in list(conns):
                if conn.user.name == who:
                    conn.push(theirs)
                elif not private:
                    conn.push(others)

    services.broker.on_signal(SignalKind.ROOM_CREATED, deliver)
    services.broker.on_signal(SignalKind.MEMBERSHIP_CHANGED, deliver)
