"""Upload quota reservations: SQL both blob stores share (mark `?` or `%s`).

An upload reserves its bytes before its body is read (the declared `Content-Length`, or
as much as the limit and the quota allow when the length is not known), so uploads of
one user running at once, on one node or several, can never together pass the quota:
each reservation is granted against the user's files plus their other live
reservations, in a transaction that holds the user's quota lock (SQLite: the one
writer, BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock on the user).
The file's record replaces its reservation in one transaction (`add_file`); a failed
upload releases it; one left by a dead node stops counting after RESERVATION_TTL_MS.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Final

from . import RESERVATION_TTL_MS, Reservation

#: `conn.execute` of either driver: (sql, params) → a cursor.
Execute = Callable[[str, tuple[Any, ...]], Any]

SQLITE_TABLE: Final = """CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    nbytes INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
)"""
POSTGRES_MIGRATION: Final = [
    """CREATE TABLE reservations (
        id TEXT PRIMARY KEY,
        user_id BIGINT NOT NULL,
        nbytes BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL
    )""",
    "CREATE INDEX reservations_user ON reservations (user_id)",
]
#: First key of PostgreSQL's two-key advisory lock on a user's quota (the second: the
#: user id). The two-key space never meets the migrations' one-key lock.
POSTGRES_LOCK_CLASS: Final = 0x4E6F4368  # "NoCh"


def grant(
    execute: Execute,
    mark: str,
    user_id: int,
    *,
    at_least: int,
    at_most: int,
    quota: int,
    now_ms: int,
) -> Reservation | None:
    """The reservation, inside the caller's transaction that holds the user's lock."""
    m = mark
    execute(
        f"DELETE FROM reservations WHERE user_id = {m} AND expires_ms <= {m}", (user_id, now_ms)
    )
    used = execute(
        f"SELECT COALESCE((SELECT SUM(size) FROM files WHERE user_id = {m}), 0) + "
        f"COALESCE((SELECT SUM(nbytes) FROM reservations WHERE user_id = {m}), 0)",
        (user_id, user_id),
    ).fetchone()[0]
    nbytes = min(at_most, quota - int(used))
    if nbytes < at_least:
        return None
    found = Reservation(secrets.token_hex(12), nbytes)
    execute(
        f"INSERT INTO reservations VALUES ({m}, {m}, {m}, {m})",
        (found.id, user_id, nbytes, now_ms + RESERVATION_TTL_MS),
    )
    return found


def release(execute: Execute, mark: str, reservation: str) -> None:
    execute(f"DELETE FROM reservations WHERE id = {mark}", (reservation,))
