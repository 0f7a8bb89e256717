"""Users' status (online / away / busy and a short text) and when they were last seen:
one row per user in `statuses`, shared SQL for both backends (mark `?` or `%s`)."""

from __future__ import annotations

from typing import Final

from . import User, UserStatus

SQLITE_MIGRATION: Final = [
    """CREATE TABLE statuses (
        user_id INTEGER PRIMARY KEY REFERENCES users(id),
        state TEXT NOT NULL DEFAULT 'online',
        text TEXT NOT NULL DEFAULT '',
        last_seen INTEGER
    )""",
]
POSTGRES_MIGRATION: Final = [
    """CREATE TABLE statuses (
        user_id BIGINT PRIMARY KEY REFERENCES users(id),
        state TEXT NOT NULL DEFAULT 'online',
        text TEXT NOT NULL DEFAULT '',
        last_seen BIGINT
    )""",
]


def set_status(mark: str, user: User, state: str, text: str) -> tuple[str, tuple[object, ...]]:
    return (
        f"INSERT INTO statuses (user_id, state, text) VALUES ({mark}, {mark}, {mark}) "
        "ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, text = excluded.text",
        (user.id, state, text),
    )


def set_last_seen(mark: str, user: User, ts: int) -> tuple[str, tuple[object, ...]]:
    return (
        f"INSERT INTO statuses (user_id, last_seen) VALUES ({mark}, {mark}) "
        "ON CONFLICT (user_id) DO UPDATE SET last_seen = excluded.last_seen",
        (user.id, ts),
    )


def status(mark: str, user: User) -> tuple[str, tuple[object, ...]]:
    return (f"SELECT state, text, last_seen FROM statuses WHERE user_id = {mark}", (user.id,))


def from_row(user: User, row: tuple[str, str, int | None] | None) -> UserStatus:
    if row is None:
        return UserStatus(user.name, "online", "", None)
    return UserStatus(user.name, row[0], row[1], row[2])
