"""The room log's read queries, shared by both backends (their SQL differs only in the
parameter mark: `?` for sqlite3, `%s` for psycopg)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import Event, Message

_FROM = "events e JOIN rooms r ON r.id = e.room_id JOIN users u ON u.id = e.user_id"
_MESSAGE_COLUMNS = "r.name, e.id, e.seq, u.name, e.payload, e.ts, e.client_id"
_EVENT_COLUMNS = "r.name, e.id, e.seq, e.kind, u.name, e.client_id, e.ts, e.target_id, e.payload"
#: Above every seq: "before" when none is given.
_NO_UPPER_BOUND = 2**62

Query = tuple[str, tuple[int, ...]]


def history(room_id: int, before: int | None, after: int | None, limit: int, mark: str) -> Query:
    """A page of messages, by seq: the oldest `limit` after `after`, else the newest
    `limit` before `before` (newest first: `messages` puts them back in order).

    Only messages exist yet, so the fold to current state is the `message` rows; the
    chat-model work applies edits and deletes (found by `target_id`) here. SQLite's
    gapless-page check (pages.py) assumes every seq up to the head is a message: it must
    learn to skip the seqs other kinds take when they are written.
    """
    base = f"SELECT {_MESSAGE_COLUMNS} FROM {_FROM} WHERE e.room_id = {mark} AND e.kind = 'message'"
    if after is not None:
        return f"{base} AND e.seq > {mark} ORDER BY e.seq LIMIT {mark}", (room_id, after, limit)
    upper = before if before is not None else _NO_UPPER_BOUND
    return f"{base} AND e.seq < {mark} ORDER BY e.seq DESC LIMIT {mark}", (room_id, upper, limit)


def messages(rows: Sequence[Sequence[Any]]) -> list[Message]:
    """A history query's rows as messages in seq order."""
    found = [Message(*row) for row in rows]
    if len(found) > 1 and found[0].seq > found[1].seq:
        found.reverse()
    return found


def replay(room_id: int, after: int, limit: int, mark: str) -> Query:
    """The log's events of every kind after `after`, in seq order."""
    return (
        f"SELECT {_EVENT_COLUMNS} FROM {_FROM} "
        f"WHERE e.room_id = {mark} AND e.seq > {mark} ORDER BY e.seq LIMIT {mark}",
        (room_id, after, limit),
    )


def events(rows: Sequence[Sequence[Any]]) -> list[Event]:
    return [Event(*row) for row in rows]
