"""Server events of the chat model and of a private room's membership, one typed
constructor each, and the room log's events (store.Event) as the frames a client sees,
live or replayed."""

from __future__ import annotations

from typing import Any

from .protocol import message_event
from .store import DELETED_BY_MODERATOR, Event, Message, unpack_payload


def edit_event(room: str, seq: int, msg_id: str, user: str, text: str, ts: int) -> dict[str, Any]:
    return {
        "type": "edit",
        "room": room,
        "seq": seq,
        "id": msg_id,
        "user": user,
        "text": text,
        "ts": ts,
    }


def delete_event(
    room: str, seq: int, msg_id: str, user: str, ts: int, by: str | None = None
) -> dict[str, Any]:
    """`by` is "moderator" when an admin deleted the message (absent otherwise)."""
    event = {"type": "delete", "room": room, "seq": seq, "id": msg_id, "user": user, "ts": ts}
    if by is not None:
        event["by"] = by
    return event


def reaction_event(
    room: str, seq: int, msg_id: str, user: str, emoji: str, on: bool, ts: int
) -> dict[str, Any]:
    return {
        "type": "reaction",
        "room": room,
        "seq": seq,
        "id": msg_id,
        "user": user,
        "emoji": emoji,
        "on": on,
        "ts": ts,
    }


def presence_event(
    room: str, user: str, state: str, text: str, last_seen: int | None
) -> dict[str, Any]:
    """`state`: online, away, busy (their status while connected) or offline."""
    return {
        "type": "presence",
        "room": room,
        "user": user,
        "state": state,
        "text": text,
        "last_seen": last_seen,
    }


def member_removed_event(room: str, user: str) -> dict[str, Any]:
    """To a private room's sockets: `user` is no longer a member (the owner or an admin
    removed them; they get `left` themselves)."""
    return {"type": "member_removed", "room": room, "user": user}


def owner_changed_event(room: str, owner: str) -> dict[str, Any]:
    """To a private room's sockets: the room was handed over to `owner`."""
    return {"type": "owner_changed", "room": room, "owner": owner}


def log_event(e: Event) -> dict[str, Any]:
    """The frame of one room-log event. A change's `id` is the message it changes (its
    own event id is in the author's ack)."""
    target = e.target or ""
    if e.kind == "edit":
        return edit_event(e.room, e.seq, target, e.user, e.payload, e.ts)
    if e.kind == "delete":
        by = DELETED_BY_MODERATOR if e.payload == DELETED_BY_MODERATOR else None
        return delete_event(e.room, e.seq, target, e.user, e.ts, by)
    if e.kind == "reaction":
        return reaction_event(
            e.room, e.seq, target, e.user, e.payload[1:], e.payload.startswith("+"), e.ts
        )
    text, attachments = unpack_payload(e.payload)
    return message_event(
        e.room, e.id, e.seq, e.user, text, e.ts, e.client_id, e.reply_to, e.mentions, attachments
    )


def history_message(m: Message) -> dict[str, Any]:
    """A message as history shows it, in its current state; a deleted one is a tombstone
    without text."""
    out: dict[str, Any] = {
        "room": m.room,
        "id": m.id,
        "seq": m.seq,
        "user": m.user,
        "text": m.text,
        "ts": m.ts,
        "client_id": m.client_id,
        "edited_ts": m.edited_ts,
        "deleted": m.deleted,
        "reactions": m.reactions,
        "reply_to": m.reply_to,
        "mentions": m.mentions,
    }
    if m.attachments:
        out["attachments"] = m.attachments
    if m.deleted:
        del out["text"]
        if m.deleted_by is not None:
            out["by"] = m.deleted_by
    return out
