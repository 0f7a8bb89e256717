"""SQLite migrations: a database made before migrations upgrades in place; newer is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from nochat.errors import Conflict, StorageError
from nochat.store import Ack, AppendRequest, Event, User
from nochat.store.sqlite import SQLiteStore
from nochat.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

from .old_schema import OLD_ROWS, OLD_SCHEMA


def _old_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA + OLD_ROWS)
    conn.close()


async def test_sqlite_schema_old_database_upgrades_keeping_messages_and_seqs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    _old_database(path)
    store = SQLiteStore(path)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        assert store.epoch == "oldepoch00000000"
        room = await store.room("general")
        assert room is not None and room.head_seq == 3
        history = await store.history(room, before=None, after=None, limit=10)
        assert [(m.seq, m.id, m.text, m.user) for m in history] == [
            (1, "id1", "one", "ann"),
            (2, "id2", "two", "ann"),
            (3, "id3", "three", "ann"),
        ]
        ann = User(1, "ann")
        # A retry of a message sent before the upgrade still gets its original ack.
        retry = await store.append(AppendRequest(room, ann, "two again", "c2"))
        assert retry == Ack("general", "c2", "id2", 2, 11)
        fresh = await store.append(AppendRequest(room, ann, "four", "c4"))
        assert fresh.seq == 4
        events = await store.replay(room, after=2, limit=10)
        assert [(e.seq, e.kind, e.payload, e.target) for e in events] == [
            (3, "message", "three", None),
            (4, "message", "four", None),
        ]
        assert isinstance(events[0], Event)
        views, _ = await store.rooms_for(ann, after=None, limit=10)
        assert [v.unread for v in views] == [0]
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert "messages" not in tables and "events" in tables


async def test_sqlite_schema_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store = SQLiteStore(path)
    with pytest.RaisesGroup(pytest.RaisesExc(StorageError, match="newer than this NoChat")):
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)


async def test_sqlite_schema_migration_adds_skeletons_to_an_old_database(tmp_path: Path) -> None:
    """A database from before the skeleton column: its users keep working, the first of
    look-alikes already there holds the skeleton, and new look-alikes are refused."""
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    try:
        old.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE "
            "COLLATE NOCASE, password_hash TEXT NOT NULL, created_ms INTEGER NOT NULL)"
        )
        old.executemany(
            "INSERT INTO users (name, password_hash, created_ms) VALUES (?, 'h', 0)",
            [("alice",), ("aIice",), ("bob",)],
        )
    finally:
        old.close()
    async with trio.open_nursery() as nursery:
        store = SQLiteStore(path)
        await nursery.start(store.run)
        try:
            assert await store.user_by_name("aIice") is not None  # grandfathered
            for taken in ("a1ice", "B0B"):
                with pytest.raises(Conflict):
                    await store.create_user(taken, "hash")
            await store.create_user("carol", "hash")
        finally:
            store.close()


async def test_sqlite_schema_main_v3_database_upgrades_through_chat_migrations(
    tmp_path: Path,
) -> None:
    """A database at version 3 (events, skeletons: before search, mentions, statuses)
    takes versions 4-8: its old messages are found by search, statuses are stored."""
    path = tmp_path / "v3.sqlite3"
    _old_database(path)
    conn = sqlite3.connect(path, isolation_level=None)
    for steps in MIGRATIONS[:3]:
        for step in steps:
            if isinstance(step, str):
                conn.execute(step)
            else:
                step(conn)
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    store = SQLiteStore(path)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        ann = await store.user_by_name("ann")
        assert ann is not None
        hits = await store.search(ann, "two", room=None, before=None, limit=10)
        assert [(h.text, h.seq) for h in hits] == [("two", 2)]
        await store.set_status(ann, "away", "lunch")
        status = await store.status(ann)
        assert (status.state, status.text) == ("away", "lunch")
        account = await store.account(ann.id)  # version 7: roles, bans, mutes
        assert account is not None and account.role == "member" and account.banned_ms is None
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8
    conn.close()
