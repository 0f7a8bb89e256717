"""What each client frame does: sends and changes to the room log, joins (with their
replay), leaves, typing, read marks and statuses.

The connection (connection.py) owns the socket, the pumps and the heartbeat; for every
frame that passed its rate limits it calls `handle`. Everything here answers through the
connection's `push`/`push_ack`/`push_error`, and raises NoChatError for the caller to
turn into an `error` frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from . import chat_model, protocol, replay
from .errors import NoChatError, NotFound, ValidationError
from .hub import RoomCursor
from .protocol import (
    ClientFrame,
    Delete,
    Edit,
    Join,
    Leave,
    Pong,
    React,
    Read,
    Send,
    Status,
    Typing,
)
from .store import Ack, AppendRequest, Room

if TYPE_CHECKING:
    from .connection import Connection

#: Most names a `joined` reply lists as online (`online_count` has the total).
ONLINE_LIST_MAX = 100
#: Rooms one connection may have joined at once.
MAX_ROOMS_PER_CONNECTION = 200


async def handle(conn: Connection, frame: ClientFrame) -> None:
    if isinstance(frame, Send):
        await on_send(conn, frame)
    elif isinstance(frame, (Edit, React)):
        room = await _writable(conn, frame.room)
        request = chat_model.change_request(room, conn.user, frame, conn.settings.max_text_chars)
        await _submit(conn, request, frame.ref)
    elif isinstance(frame, Delete):  # a muted user may still take their words back
        room = await conn.services.rooms.visible_room(conn.user, frame.room)
        request = chat_model.change_request(room, conn.user, frame, conn.settings.max_text_chars)
        await _submit(conn, request, frame.ref)
    elif isinstance(frame, Typing):
        _joined(conn, frame.room)
        services, name = conn.services, conn.user.name
        subscribers = services.hub.subscribers(frame.room)
        if services.throttles.typing.allow(frame.room, name, subscribers, trio.current_time()):
            event = {"type": "typing", "room": frame.room, "user": name}
            services.broker.publish(frame.room, protocol.encode(event))
    elif isinstance(frame, Join):
        await on_join(conn, frame)
    elif isinstance(frame, Leave):
        _joined(conn, frame.room)
        conn.leave(frame.room)
        conn.push(protocol.encode({"type": "left", "room": frame.room, "ref": frame.ref}))
    elif isinstance(frame, Read):
        room = _joined(conn, frame.room)
        await conn.services.store.set_read(room, conn.user, frame.seq)
    elif isinstance(frame, Status):
        await conn.services.status.set(conn.user, frame.state, frame.text)
    elif isinstance(frame, Pong):
        pass


async def _writable(conn: Connection, name: str) -> Room:
    """The room, read through the directory each time (never the connection's copy: an
    admin may have archived it or removed the user since the join), if the user may
    write in it now (not muted, not archived)."""
    room = await conn.services.rooms.visible_room(conn.user, name)
    await conn.services.moderation.require_can_write(conn.user, room)
    return room


def _joined(conn: Connection, name: str) -> Room:
    room = conn.rooms.get(name)
    if room is None:
        raise NotFound(f"join {name!r} first", code="not_joined")
    return room


async def on_send(conn: Connection, frame: Send) -> None:
    protocol.require_text(
        frame.text, conn.settings.max_text_chars, may_be_empty=bool(frame.attachments)
    )
    room = await _writable(conn, frame.room)
    attachments = await conn.services.files.attach(
        conn.user, room, frame.attachments, frame.client_id
    )
    request = AppendRequest(
        room,
        conn.user,
        frame.text,
        frame.client_id,
        reply_to=frame.reply_to,
        attachments=attachments,
    )
    await _submit(conn, request, frame.ref)


async def _submit(conn: Connection, request: AppendRequest, ref: protocol.Ref) -> None:
    """Queue a room-log append; its ack (or error) is pushed when it commits."""

    def done(result: Ack | BaseException) -> None:
        if isinstance(result, Ack):
            conn.push_ack(protocol.encode(ack_event(result, ref)))
        elif isinstance(result, NoChatError):
            conn.services.files.refused_nowait(request)  # its files are free again
            conn.push_error(result.code, result.message, ref, **result.details())
        else:
            conn.push_error("internal", "the message was not stored", ref)

    await conn.services.store.submit(request, done)


async def on_join(conn: Connection, frame: Join) -> None:
    services, store, user = conn.services, conn.services.store, conn.user
    if frame.room not in conn.rooms and len(conn.rooms) >= MAX_ROOMS_PER_CONNECTION:
        raise ValidationError("too many rooms joined", code="too_many_rooms")
    room = await services.rooms.visible_room(user, frame.room)
    if not room.private:
        await services.rooms.ensure_member(room, user)  # so it counts unread for them
    head = await store.head_seq(room)
    since = frame.since
    if (frame.epoch is not None and frame.epoch != store.epoch) or (
        since is not None and since > head
    ):
        if frame.room in conn.rooms:
            conn.leave(frame.room)
        reset = {"type": "reset", "room": room.name, "epoch": store.epoch, "head_seq": head}
        conn.push(protocol.encode(protocol.with_ref(reset, frame.ref)))
        return
    cursor = RoomCursor(seq=head if since is None else since)
    if room.name in conn.rooms:
        services.hub.unsubscribe(room.name, conn.sub)  # re-join: start over, presence stays
    else:
        conn.rooms[room.name] = room
        services.presence.enter(room.name, user.name)
    services.hub.subscribe(room.name, conn.sub, cursor)
    joined = {
        "type": "joined",
        "room": room.name,
        "head_seq": head,
        "epoch": store.epoch,
        "members": await store.members(room) if room.private else [],
        **await services.presence.online_summary(room.name, ONLINE_LIST_MAX),
    }
    conn.push(protocol.encode(protocol.with_ref(joined, frame.ref)))
    cursor.announced = True  # presence and typing from here on, even while replaying
    await replay.catch_up(services, conn.sub, user.name, room, cursor)


def ack_event(ack: Ack, ref: protocol.Ref) -> dict[str, Any]:
    event = {
        "type": "ack",
        "room": ack.room,
        "client_id": ack.client_id,
        "id": ack.id,
        "seq": ack.seq,
        "ts": ack.ts,
    }
    return protocol.with_ref(event, ref)
