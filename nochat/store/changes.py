"""Changes to a message (edit, delete, reaction): the rules, checked inside the commit.

Both backends call `check` in the transaction that inserts the change, once the room's
next seq is theirs alone (SQLite: its one writer; PostgreSQL: the room's row locked),
so the rules see every earlier event of the room, this batch's included. The SQL is
shared; the backends differ only in the parameter mark (`?` or `%s`).

- a retry (the user's `client_id` already stored) gets the original ack, before any
  rule, so a retried delete is acked again rather than refused as `deleted`; a no-op's
  ack is kept too (`noop_acks`), so a retried no-op stays one even after later changes;
- the target must be a message of this room (`not_found`), not deleted (`deleted`);
- an edit is its author's; a delete its author's, the private room's owner's, or an
  admin's (a moderator delete: the payload DELETED_BY_MODERATOR, which only the admin
  service writes) (`forbidden`);
- a reaction that would change nothing (adding one that is there, removing one that is
  not) writes no event: it is acked with the event that made the current state, or
  with the message itself when the user never reacted with that emoji.

`scrub` runs after a delete's insert: the message's text and every edit's text are
overwritten in the same transaction (SQLite's secure_delete zeroes the freed bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ..errors import Conflict, Forbidden, NoChatError, NotFound
from . import DELETED_BY_MODERATOR, Ack, AppendRequest

#: `conn.execute` of either driver: (sql, params) → a cursor with fetchone().
Execute = Callable[[str, tuple[Any, ...]], Any]


def check(execute: Execute, mark: str, req: AppendRequest) -> Ack | NoChatError | None:
    """None when the change may be written now, else its outcome (an ack or an error)."""
    m, room, user = mark, req.room, req.user
    for table in ("events", "noop_acks"):
        original = execute(
            f"SELECT e.room_id, r.name, e.id, e.seq, e.ts FROM {table} e "
            f"JOIN rooms r ON r.id = e.room_id WHERE e.user_id = {m} AND e.client_id = {m}",
            (user.id, req.client_id),
        ).fetchone()
        if original is not None:
            if original[0] != room.id:
                return duplicate_elsewhere()
            return Ack(original[1], req.client_id, original[2], original[3], original[4])
    target = execute(
        f"SELECT user_id, seq, ts FROM events WHERE id = {m} AND room_id = {m} "
        "AND kind = 'message'",
        (req.target, room.id),
    ).fetchone()
    if target is None:
        return NotFound("no such message in this room")
    deleted = execute(
        f"SELECT 1 FROM events WHERE target_id = {m} AND kind = 'delete'", (req.target,)
    ).fetchone()
    if deleted is not None:
        return Conflict("the message was deleted", code="deleted")
    author = target[0] == user.id
    if req.kind == "edit" and not author:
        return Forbidden("only its author may edit a message")
    moderator = req.kind == "delete" and req.text == DELETED_BY_MODERATOR  # admins only
    if req.kind == "delete" and not (author or moderator or _owns_private(req)):
        return Forbidden("only its author or the private room's owner may delete a message")
    if req.kind == "reaction":
        latest = execute(
            f"SELECT payload, id, seq, ts FROM events WHERE target_id = {m} "
            f"AND kind = 'reaction' AND user_id = {m} AND substr(payload, 2) = {m} "
            "ORDER BY seq DESC LIMIT 1",
            (req.target, user.id, req.text[1:]),
        ).fetchone()
        on = req.text.startswith("+")
        if latest is None and not on:
            ack = Ack(room.name, req.client_id, str(req.target), int(target[1]), int(target[2]))
            return _remember(execute, mark, req, ack)
        if latest is not None and latest[0].startswith("+") == on:
            ack = Ack(room.name, req.client_id, latest[1], int(latest[2]), int(latest[3]))
            return _remember(execute, mark, req, ack)
    return None


def _remember(execute: Execute, mark: str, req: AppendRequest, ack: Ack) -> Ack:
    """Keep a no-op's ack under its client_id: its retry, after later changes, gets it
    again instead of being judged anew (and applied after all)."""
    marks = ", ".join([mark] * 6)
    execute(
        f"INSERT INTO noop_acks VALUES ({marks}) ON CONFLICT (user_id, client_id) DO NOTHING",
        (req.user.id, req.client_id, req.room.id, ack.id, ack.seq, ack.ts),
    )
    return ack


def scrub(execute: Execute, mark: str, req: AppendRequest) -> None:
    """A delete's second step: no text of the message is left in its rows."""
    execute(
        f"UPDATE events SET payload = '' WHERE room_id = {mark} "
        f"AND (id = {mark} OR (target_id = {mark} AND kind = 'edit'))",
        (req.room.id, req.target, req.target),
    )


def _owns_private(req: AppendRequest) -> bool:
    room = req.room
    return room.private and not room.dm and room.owner_id == req.user.id


#: No-op changes' acks, by (user, client_id): schema v8 (SQLite), v8 (PostgreSQL).
SQLITE_MIGRATION: Final = [
    """CREATE TABLE noop_acks (
        user_id INTEGER NOT NULL,
        client_id TEXT NOT NULL,
        room_id INTEGER NOT NULL,
        id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        PRIMARY KEY (user_id, client_id)
    ) WITHOUT ROWID""",
]
POSTGRES_MIGRATION: Final = [
    """CREATE TABLE noop_acks (
        user_id BIGINT NOT NULL,
        client_id TEXT NOT NULL,
        room_id BIGINT NOT NULL,
        id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        PRIMARY KEY (user_id, client_id)
    )""",
]


def duplicate_elsewhere() -> Conflict:
    return Conflict("client_id already used for another room", code="duplicate_client_id")
