"""PostgreSQL schema: numbered migrations recorded in `schema_migrations`, applied under an
advisory lock so that nodes starting together migrate once.

The tables mirror SQLite's (nochat/store/sqlite_schema.py) with the room log as `events`
from the start (docs/STORAGE.md); `rooms.head_seq` is the room's last seq, advanced in
the transaction that inserts the events it numbers.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ..blobs import candidates, reservations
from . import admin_queries, changes, mentions, now_ms, postgres_search, statuses
from .sqlite_schema import refuse_newer

#: pg_advisory_xact_lock key for migrations: any fixed 64-bit number ("NoChat" in ASCII).
MIGRATION_LOCK = 0x4E6F43686174

_V1 = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE users (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        skeleton TEXT
    )""",
    # SQLite's NOCASE: one name per spelling, whatever the case.
    "CREATE UNIQUE INDEX users_name ON users (lower(name))",
    # Names that look alike (nochat/text.py's name_skeleton) clash too.
    "CREATE UNIQUE INDEX users_skeleton ON users (skeleton)",
    """CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id BIGINT NOT NULL REFERENCES users(id),
        expires_ms BIGINT NOT NULL,
        revoked BOOLEAN NOT NULL DEFAULT false
    )""",
    """CREATE TABLE rooms (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        private BOOLEAN NOT NULL DEFAULT false,
        dm BOOLEAN NOT NULL DEFAULT false,
        owner_id BIGINT REFERENCES users(id),
        head_seq BIGINT NOT NULL DEFAULT 0,
        created_ms BIGINT NOT NULL
    )""",
    """CREATE TABLE members (
        room_id BIGINT NOT NULL REFERENCES rooms(id),
        user_id BIGINT NOT NULL REFERENCES users(id),
        last_read BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (room_id, user_id)
    )""",
    """CREATE TABLE events (
        room_id BIGINT NOT NULL REFERENCES rooms(id),
        seq BIGINT NOT NULL,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('message', 'edit', 'delete', 'reaction')),
        user_id BIGINT NOT NULL REFERENCES users(id),
        client_id TEXT NOT NULL,
        ts BIGINT NOT NULL,
        target_id TEXT,
        payload TEXT NOT NULL,
        PRIMARY KEY (room_id, seq),
        UNIQUE (user_id, client_id)
    )""",
    "CREATE INDEX events_target ON events (target_id, seq) WHERE target_id IS NOT NULL",
    """CREATE TABLE dms (
        user_a BIGINT NOT NULL REFERENCES users(id),
        user_b BIGINT NOT NULL REFERENCES users(id),
        room_id BIGINT NOT NULL REFERENCES rooms(id),
        PRIMARY KEY (user_a, user_b)
    )""",
    "INSERT INTO rooms (name, created_ms) VALUES ('general', 0)",
]

#: Files (nochat/blobs/postgres.py): records, and blobs as fixed-size chunk rows so that
#: a read of any byte range touches only the rows it needs.
_FILES = [
    """CREATE TABLE files (
        id TEXT PRIMARY KEY,
        room TEXT NOT NULL,
        user_id BIGINT NOT NULL,
        name TEXT NOT NULL,
        size BIGINT NOT NULL,
        content_type TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        width INTEGER,
        height INTEGER,
        thumb_sha256 TEXT,
        attached_to TEXT,
        message_id TEXT
    )""",
    "CREATE INDEX files_user ON files (user_id)",
    "CREATE INDEX files_sha ON files (sha256)",
    "CREATE INDEX files_thumb ON files (thumb_sha256)",
    "CREATE INDEX files_message ON files (message_id)",
    """CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        size BIGINT NOT NULL,
        chunks TEXT NOT NULL
    )""",
    """CREATE TABLE blob_chunks (
        chunks TEXT NOT NULL,
        n INTEGER NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (chunks, n)
    )""",
]

#: MIGRATIONS[i] is version i + 1.
MIGRATIONS: list[list[str]] = [
    _V1,
    list(postgres_search.MIGRATION),
    list(mentions.POSTGRES_MIGRATION),
    list(statuses.POSTGRES_MIGRATION),
    _FILES,
    list(admin_queries.POSTGRES_MIGRATION),
    list(reservations.POSTGRES_MIGRATION),
    list(changes.POSTGRES_MIGRATION),
    list(candidates.POSTGRES_MIGRATION),
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Bring the database to SCHEMA_VERSION in one transaction; the version it was at."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)"
        )
        row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
        found = int(row[0]) if row else 0
        refuse_newer(found, SCHEMA_VERSION)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for sql in MIGRATIONS[version - 1]:
                conn.execute(sql)  # module constants, never input
            conn.execute("INSERT INTO schema_migrations VALUES (%s, %s)", (version, now_ms()))
    return found
