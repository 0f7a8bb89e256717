"""SQLite schema: numbered migrations, applied in order and tracked in `PRAGMA user_version`.

Version 1 is the schema NoChat shipped first (messages in a `messages` table). Version 2
turns the room log into a log of *events* (the comment above `_V2`, and docs/STORAGE.md): every
row has a kind, and an edit, a delete or a reaction will take a seq in the room's log
like a message does, so a resume replays them in order.

A database written by a newer NoChat (user_version above the last migration here) is
refused: an older binary must not guess at a schema it does not know. Version 3 adds
`users.skeleton` (look-alike names, nochat/text.py); version 4 the full-text index
`search_fts` (sqlite_search.py); version 5 replies and mentions (mentions.py);
version 6 users' statuses (statuses.py); version 7 roles, bans, mutes, session
details, archived rooms, the audit log and password resets (admin_queries.py).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from ..errors import StorageError
from ..text import name_skeleton
from . import admin_queries, changes, mentions, sqlite_search, statuses

log = logging.getLogger(__name__)

#: One step of a migration: a statement, or a function for what SQL alone cannot do.
Step = str | Callable[[sqlite3.Connection], None]

_V1: list[Step] = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        expires_ms INTEGER NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS rooms (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        private INTEGER NOT NULL DEFAULT 0,
        dm INTEGER NOT NULL DEFAULT 0,
        owner_id INTEGER REFERENCES users(id),
        last_seq INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS members (
        room_id INTEGER NOT NULL REFERENCES rooms(id),
        user_id INTEGER NOT NULL REFERENCES users(id),
        last_read INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (room_id, user_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS messages (
        room_id INTEGER NOT NULL REFERENCES rooms(id),
        seq INTEGER NOT NULL,
        id TEXT NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES users(id),
        text TEXT NOT NULL,
        client_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        PRIMARY KEY (room_id, seq),
        UNIQUE (user_id, client_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS dms (
        user_a INTEGER NOT NULL REFERENCES users(id),
        user_b INTEGER NOT NULL REFERENCES users(id),
        room_id INTEGER NOT NULL REFERENCES rooms(id),
        PRIMARY KEY (user_a, user_b)
    ) WITHOUT ROWID""",
]

# The room log. `kind` is 'message' (the only kind written today) or one of the reserved
# 'edit', 'delete', 'reaction'; `target_id` is the message an edit/delete/reaction
# changes (NULL for a message); `payload` is the message text, an edit's new text, a
# reaction's emoji, '' for a delete. (user_id, client_id) is unique across every kind:
# a retried send, edit or reaction returns the original ack. Current state is a fold at
# read time (history picks the `message` rows and, once edits exist, the latest edit or
# delete by `target_id`, which the partial index serves): a new message stays one INSERT.
_V2: list[Step] = [
    """CREATE TABLE events (
        room_id INTEGER NOT NULL REFERENCES rooms(id),
        seq INTEGER NOT NULL,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('message', 'edit', 'delete', 'reaction')),
        user_id INTEGER NOT NULL REFERENCES users(id),
        client_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        target_id TEXT,
        payload TEXT NOT NULL,
        PRIMARY KEY (room_id, seq),
        UNIQUE (user_id, client_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX events_target ON events (target_id, seq) WHERE target_id IS NOT NULL",
    "INSERT INTO events (room_id, seq, id, kind, user_id, client_id, ts, target_id, payload) "
    "SELECT room_id, seq, id, 'message', user_id, client_id, ts, NULL, text FROM messages",
    "DROP TABLE messages",
]


def _add_skeletons(c: sqlite3.Connection) -> None:
    """Version 3: users.skeleton (text.name_skeleton, unique). Idempotent: a database made
    after the column came but before user_version was kept has it already. An old
    database gets the column, filled in; names that already looked alike before the
    rule keep working, only the first of each look-alike group gets the skeleton (NULLs
    do not clash).
    """
    columns = {row[1] for row in c.execute("PRAGMA table_info(users)")}
    if "skeleton" not in columns:
        c.execute("ALTER TABLE users ADD COLUMN skeleton TEXT")
    missing = c.execute("SELECT id, name FROM users WHERE skeleton IS NULL ORDER BY id").fetchall()
    if missing:
        taken = {
            row[0] for row in c.execute("SELECT skeleton FROM users WHERE skeleton IS NOT NULL")
        }
        fill: list[tuple[str, int]] = []
        for user_id, name in missing:
            skeleton = name_skeleton(name)
            if skeleton not in taken:
                taken.add(skeleton)
                fill.append((skeleton, user_id))
        c.executemany("UPDATE users SET skeleton = ? WHERE id = ?", fill)
        if len(fill) < len(missing):
            log.warning("%d existing user names look like others", len(missing) - len(fill))
    c.execute("CREATE UNIQUE INDEX IF NOT EXISTS users_skeleton ON users (skeleton)")


#: MIGRATIONS[i] takes a database from user_version i to i + 1.
MIGRATIONS: list[list[Step]] = [
    _V1,
    _V2,
    [_add_skeletons],
    list(sqlite_search.MIGRATION),
    list(mentions.SQLITE_MIGRATION),
    list(statuses.SQLITE_MIGRATION),
    list(admin_queries.SQLITE_MIGRATION),
    list(changes.SQLITE_MIGRATION),
]
SCHEMA_VERSION = len(MIGRATIONS)


def refuse_newer(found: int, known: int) -> None:
    """StorageError when a database's schema is newer than the `known` latest version."""
    if found > known:
        raise StorageError(
            f"the database's schema version {found} is newer than this NoChat's "
            f"({known}): run the NoChat version that wrote it, or newer"
        )


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION in one transaction; the version it was at.

    A database made before versions were recorded has user_version 0 and the v1 tables:
    v1's `IF NOT EXISTS` makes it a no-op there, so it upgrades like a fresh file.
    """
    conn.execute("BEGIN IMMEDIATE")  # two processes opening at once migrate once
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        refuse_newer(found, SCHEMA_VERSION)
        for steps in MIGRATIONS[found:]:
            for step in steps:
                if isinstance(step, str):
                    conn.execute(step)
                else:
                    step(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return found
