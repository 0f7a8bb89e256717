"""Replies and @mentions of a new message, resolved in the commit's transaction.

A `reply_to` must name a message of the same room (a deleted one too: the reply then
quotes a tombstone). `@name` mentions a user when the name is a user's (case aside) and
that user can see the room (a public room: everyone; a private room or DM: its
members); the message carries the names as stored, and the `mentions` table
(room, seq, user) counts a user's unread mentions per room. Both backends share this
SQL (mark `?` or `%s`).
"""

from __future__ import annotations

import re
from typing import Final

from ..errors import NotFound
from . import AppendRequest
from .changes import Execute

#: `@name` where a name may stand: not inside a word or an address (`a@b.c`).
MENTION_RE: Final = re.compile(r"(?<![\w@.])@([A-Za-z0-9_-]{1,32})(?![\w-])")
#: Most users one message mentions (the rest of the names are plain text).
MAX_MENTIONS: Final = 20


def names_in(text: str) -> list[str]:
    """The distinct names `@`-mentioned in `text`, first appearance first, lower case."""
    if "@" not in text:  # most messages: no regex scan (it is per message, in the commit)
        return []
    seen: dict[str, None] = {}
    for match in MENTION_RE.finditer(text):
        seen.setdefault(match.group(1).lower(), None)
        if len(seen) >= MAX_MENTIONS:
            break
    return list(seen)


def check_reply(execute: Execute, mark: str, req: AppendRequest) -> NotFound | None:
    if req.reply_to is None:
        return None
    found = execute(
        f"SELECT 1 FROM events WHERE id = {mark} AND room_id = {mark} AND kind = 'message'",
        (req.reply_to, req.room.id),
    ).fetchone()
    return None if found is not None else NotFound("reply_to is no message of this room")


def resolve(execute: Execute, mark: str, req: AppendRequest) -> list[tuple[int, str]]:
    """(user id, name) of each user the message mentions who can see the room."""
    names = names_in(req.text)
    if not names:
        return []
    marks = ", ".join([mark] * len(names))
    sql = f"SELECT u.id, u.name FROM users u WHERE lower(u.name) IN ({marks})"
    params: list[object] = list(names)
    if req.room.private:
        sql += (
            f" AND EXISTS (SELECT 1 FROM members m WHERE m.room_id = {mark} AND m.user_id = u.id)"
        )
        params.append(req.room.id)
    found = {name.lower(): (int(uid), name) for uid, name in execute(sql, tuple(params)).fetchall()}
    return [found[n] for n in names if n in found]


def joined(users: list[tuple[int, str]]) -> str:
    """The names as the events row keeps them (space-separated; names have no spaces)."""
    return " ".join(name for _, name in users)


def split(stored: str | None) -> list[str]:
    return stored.split() if stored else []


SQLITE_MIGRATION: Final = [
    "ALTER TABLE events ADD COLUMN reply_to TEXT",
    "ALTER TABLE events ADD COLUMN mentions TEXT NOT NULL DEFAULT ''",
    """CREATE TABLE mentions (
        user_id INTEGER NOT NULL REFERENCES users(id),
        room_id INTEGER NOT NULL REFERENCES rooms(id),
        seq INTEGER NOT NULL,
        PRIMARY KEY (user_id, room_id, seq)
    ) WITHOUT ROWID""",
]
POSTGRES_MIGRATION: Final = [
    "ALTER TABLE events ADD COLUMN reply_to TEXT",
    "ALTER TABLE events ADD COLUMN mentions TEXT NOT NULL DEFAULT ''",
    """CREATE TABLE mentions (
        user_id BIGINT NOT NULL REFERENCES users(id),
        room_id BIGINT NOT NULL REFERENCES rooms(id),
        seq BIGINT NOT NULL,
        PRIMARY KEY (user_id, room_id, seq)
    )""",
]
