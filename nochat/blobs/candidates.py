"""Blobs that may be unused, and the rule for deleting them, shared by both blob stores.

Blobs are content-addressed and shared by file records. An upload of bytes already
stored `put`s them (writing them again: the blob is there either way) and names them
in its record only later (`add_file`, after the thumbnail is made). Deleting a blob as
soon as the last record naming it goes would therefore race that upload: its record
would name nothing. So no removal deletes a blob. The blobs a removed record named
become *candidates* (`doomed_blobs`, in the transaction that deletes the record, so a
crash cannot leak them), and so does every blob `put` stores (an upload that fails
before `add_file` leaves its bytes as a candidate, not as litter); each `put` also
stamps the blob as just put (local store: the file's mtime, under the directory's
lock; PostgreSQL: `blobs.put_ms`, upserted). `collect(before_ms)` then deletes a
candidate only when no record names it and it was not put at or after `before_ms`
(the caller's margin: longer than any upload takes from `put` to `add_file`);
a candidate put since is looked at again once that put is older than the margin,
one named again is no candidate any more. Each call settles at most COLLECT_BATCH
candidates, oldest first, so a pass is bounded and every candidate's turn comes.

Local store: one process owns the data directory, and the stamp and the unlink happen
under one lock, so an unlink can never come between a put's rename and its stamp.
PostgreSQL: the delete of a blob row is one statement that rechecks `put_ms` and the
references under the row's lock, so it is ordered against a concurrent put's upsert:
a put that commits first makes the delete skip the blob; a delete that commits first
makes the put's `INSERT … ON CONFLICT` insert the blob again with the chunks it wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Final

#: Candidates one `collect` call settles at most.
COLLECT_BATCH: Final = 500

#: `conn.execute` of either driver: (sql, params) → a cursor.
Execute = Callable[[str, tuple[Any, ...]], Any]

SQLITE_TABLE: Final = """CREATE TABLE IF NOT EXISTS doomed_blobs (
    sha256 TEXT PRIMARY KEY,
    since_ms INTEGER NOT NULL
)"""
SQLITE_INDEX: Final = "CREATE INDEX IF NOT EXISTS doomed_blobs_since ON doomed_blobs (since_ms)"

#: PostgreSQL schema v9: when a file was claimed (file_reconcile.py), when a blob was last
#: put, and the candidates. Claims made before have no time: stamped with the migration's.
POSTGRES_MIGRATION: Final = [
    "ALTER TABLE files ADD COLUMN claimed_ms BIGINT",
    "UPDATE files SET claimed_ms = (extract(epoch FROM clock_timestamp()) * 1000)::bigint "
    "WHERE attached_to IS NOT NULL",
    "ALTER TABLE blobs ADD COLUMN put_ms BIGINT NOT NULL DEFAULT 0",
    """CREATE TABLE doomed_blobs (
        sha256 TEXT PRIMARY KEY,
        since_ms BIGINT NOT NULL
    )""",
    "CREATE INDEX doomed_blobs_since ON doomed_blobs (since_ms)",
    # Blobs an earlier version left behind (a crash between a record's delete and its
    # blob's) are candidates from the start.
    "INSERT INTO doomed_blobs SELECT b.sha256, 0 FROM blobs b WHERE NOT EXISTS "
    "(SELECT 1 FROM files f WHERE f.sha256 = b.sha256 OR f.thumb_sha256 = b.sha256)",
]

#: Whether a record names the blob (its file or its thumbnail); `{m}`: the mark.
REFERENCED: Final = "EXISTS (SELECT 1 FROM files f WHERE f.sha256 = {m} OR f.thumb_sha256 = {m})"


def wall_ms() -> int:
    """Wall-clock ms: the clock of `put` stamps, record times and `collect`'s margin."""
    return time.time_ns() // 1_000_000


def mark(execute: Execute, m: str, shas: Iterable[str | None], since_ms: int) -> None:
    """Make the blobs candidates, to be looked at once `since_ms` is older than the margin
    (0: at the next `collect`)."""
    for sha in dict.fromkeys(s for s in shas if s):
        execute(
            f"INSERT INTO doomed_blobs VALUES ({m}, {m}) "
            "ON CONFLICT (sha256) DO UPDATE SET since_ms = excluded.since_ms",
            (sha, since_ms),
        )


def due(execute: Execute, m: str, before_ms: int, lock: str = "") -> list[str]:
    """The candidates whose turn it is (oldest first, at most COLLECT_BATCH)."""
    rows = execute(
        f"SELECT sha256 FROM doomed_blobs WHERE since_ms < {m} ORDER BY since_ms LIMIT {m}{lock}",
        (before_ms, COLLECT_BATCH),
    ).fetchall()
    return [row[0] for row in rows]
