"""The room log's read queries, shared by both backends (their SQL differs only in the
parameter mark: `?` for sqlite3, `%s` for psycopg)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from . import DELETED_BY_MODERATOR, Event, Message, mentions, unpack_payload

#: The name an event's author is shown by: a deleted account's is DELETED_USER
#: (admin_queries.py keeps its row under a name no one can register).
DELETED_USER = "deleted user"
AUTHOR = f"CASE WHEN u.deleted_ms IS NULL THEN u.name ELSE '{DELETED_USER}' END"
_FROM = "events e JOIN rooms r ON r.id = e.room_id JOIN users u ON u.id = e.user_id"
_MESSAGE_COLUMNS = (
    f"r.name, e.id, e.seq, {AUTHOR}, e.payload, e.ts, e.client_id, e.reply_to, e.mentions"
)
_EVENT_COLUMNS = (
    f"r.name, e.id, e.seq, e.kind, {AUTHOR}, e.client_id, e.ts, e.target_id, e.payload, "
    "e.reply_to, e.mentions"
)
#: Above every seq: "before" when none is given.
_NO_UPPER_BOUND = 2**62

Query = tuple[str, tuple[int, ...]]


def history(room_id: int, before: int | None, after: int | None, limit: int, mark: str) -> Query:
    """A page of messages, by seq: the oldest `limit` after `after`, else the newest
    `limit` before `before` (newest first: `messages` puts them back in order).

    The page is of `message` rows; `fold` then applies their edits, deletes and
    reactions (found by `target_id`). SQLite's gapless-page check (pages.py) counts the
    log rows of every kind in the page's window.
    """
    base = f"SELECT {_MESSAGE_COLUMNS} FROM {_FROM} WHERE e.room_id = {mark} AND e.kind = 'message'"
    if after is not None:
        return f"{base} AND e.seq > {mark} ORDER BY e.seq LIMIT {mark}", (room_id, after, limit)
    upper = before if before is not None else _NO_UPPER_BOUND
    return f"{base} AND e.seq < {mark} ORDER BY e.seq DESC LIMIT {mark}", (room_id, upper, limit)


def messages(rows: Sequence[Sequence[Any]]) -> list[Message]:
    """A history query's rows as messages in seq order."""
    found = [
        _message(room, msg_id, seq, user, payload, ts, cid, reply, m)
        for room, msg_id, seq, user, payload, ts, cid, reply, m in rows
    ]
    if len(found) > 1 and found[0].seq > found[1].seq:
        found.reverse()
    return found


def _message(
    room: str, msg_id: str, seq: int, user: str, payload: str, ts: int, cid: str, reply: Any, m: Any
) -> Message:
    text, attachments = unpack_payload(payload)
    return Message(
        room,
        msg_id,
        seq,
        user,
        text,
        ts,
        cid,
        reply_to=reply,
        mentions=mentions.split(m),
        attachments=attachments,
    )


def replay(room_id: int, after: int, limit: int, mark: str) -> Query:
    """The log's events of every kind after `after`, in seq order."""
    return (
        f"SELECT {_EVENT_COLUMNS} FROM {_FROM} "
        f"WHERE e.room_id = {mark} AND e.seq > {mark} ORDER BY e.seq LIMIT {mark}",
        (room_id, after, limit),
    )


def events(rows: Sequence[Sequence[Any]]) -> list[Event]:
    return [
        Event(room, i, seq, kind, user, cid, ts, target, payload, reply, mentions.split(m))
        for room, i, seq, kind, user, cid, ts, target, payload, reply, m in rows
    ]


def fold(
    execute: Callable[[str, tuple[Any, ...]], Any], mark: str, found: list[Message]
) -> list[Message]:
    """The page's messages in their current state: the latest edit's text and time, a
    delete's tombstone (no text, no reactions), the reactions still on, by emoji.

    One query for the whole page, by the `events_target` index, in seq order."""
    if not found:
        return found
    marks = ", ".join([mark] * len(found))
    rows = execute(
        f"SELECT e.target_id, e.kind, {AUTHOR}, e.payload, e.ts FROM events e "
        f"JOIN users u ON u.id = e.user_id WHERE e.target_id IN ({marks}) ORDER BY e.seq",
        tuple(m.id for m in found),
    ).fetchall()
    if not rows:
        return found
    changes: dict[str, list[tuple[str, str, str, int]]] = {}
    for target, kind, user, payload, ts in rows:
        changes.setdefault(target, []).append((kind, user, payload, ts))
    return [_apply(m, changes[m.id]) if m.id in changes else m for m in found]


def _apply(m: Message, changes: list[tuple[str, str, str, int]]) -> Message:
    text, edited_ts = m.text, None
    reactions: dict[str, list[str]] = {}
    for kind, user, payload, ts in changes:
        if kind == "delete":
            by = DELETED_BY_MODERATOR if payload == DELETED_BY_MODERATOR else None
            return msgspec.structs.replace(m, text="", deleted=True, deleted_by=by)
        if kind == "edit":
            text, edited_ts = payload, ts
        elif kind == "reaction":
            users = reactions.setdefault(payload[1:], [])
            if payload.startswith("+") and user not in users:
                users.append(user)
            elif payload.startswith("-") and user in users:
                users.remove(user)
    reactions = {emoji: users for emoji, users in reactions.items() if users}
    return msgspec.structs.replace(m, text=text, edited_ts=edited_ts, reactions=reactions)
