"""SQLite-only: small writes (memberships, read markers) ride the appends' group commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from nochat.errors import Conflict
from nochat.store import Room, User
from nochat.store.sqlite import SQLiteStore


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with trio.open_nursery() as nursery:
        s = SQLiteStore(tmp_path / "db.sqlite3")
        await nursery.start(s.run)
        yield s
        s.close()


async def test_sqlite_memberships_and_read_markers_ride_the_group_commit(
    sqlite_store: SQLiteStore,
) -> None:
    store = sqlite_store
    users = [await store.create_user(f"u{i}", "hash") for i in range(50)]
    room = await store.room("general")
    assert room is not None
    ghost = Room(999, "ghost", False, False, None, 0)
    before = store.statistics().commits

    async def join(user: User) -> None:
        await store.add_member(room, user)
        await store.set_read(room, user, 0)

    async def join_a_missing_room() -> None:
        with pytest.raises(Conflict):  # fails alone: the others in its commit still land
            await store.add_member(ghost, users[0])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(join_a_missing_room)
        for user in users:
            nursery.start_soon(join, user)
    assert sorted(await store.members(room)) == sorted(u.name for u in users)
    assert 1 <= store.statistics().commits - before < 50  # not a transaction (fsync) each
