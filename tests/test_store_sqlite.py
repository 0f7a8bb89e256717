"""The SQLite store: gapless seqs, idempotent appends, group commit, durable epoch."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import trio

from nochat.errors import Conflict, NotFound, Unavailable
from nochat.store import Ack, AppendRequest, Message, Room, User
from nochat.store.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with trio.open_nursery() as nursery:
        s = SQLiteStore(tmp_path / "db.sqlite3")
        await nursery.start(s.run)
        yield s
        s.close()


async def _general(store: SQLiteStore) -> Room:
    room = await store.room("general")
    assert room is not None
    return room


async def test_store_fresh_database_has_general_and_an_epoch(store: SQLiteStore) -> None:
    room = await _general(store)
    assert (room.name, room.private, room.head_seq) == ("general", False, 0)
    assert len(store.epoch) == 16


async def test_store_concurrent_appends_are_group_committed_with_gapless_seqs(
    store: SQLiteStore,
) -> None:
    user = await store.create_user("ann", "hash")
    room = await _general(store)
    committed: list[Message] = []
    store.on_commit = lambda batch: committed.extend(batch)
    acks: list[Ack] = []

    async def one(i: int) -> None:
        acks.append(await store.append(AppendRequest(room, user, f"m{i}", f"c{i}")))

    async with trio.open_nursery() as nursery:
        for i in range(200):
            nursery.start_soon(one, i)
    assert sorted(a.seq for a in acks) == list(range(1, 201))
    assert [m.seq for m in committed] == list(range(1, 201))  # published in seq order
    assert store.commits < 200  # many appends shared a transaction
    assert await store.head_seq(room) == 200


async def test_store_memberships_and_read_markers_ride_the_group_commit(
    store: SQLiteStore,
) -> None:
    users = [await store.create_user(f"u{i}", "hash") for i in range(50)]
    room = await _general(store)
    ghost = Room(999, "ghost", False, False, None, 0)
    before = store.commits

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
    assert 1 <= store.commits - before < 50  # group commits, not a transaction (fsync) each


async def test_store_retry_returns_the_original_ack(store: SQLiteStore) -> None:
    user = await store.create_user("ann", "hash")
    room = await _general(store)
    first = await store.append(AppendRequest(room, user, "hello", "same"))
    again = await store.append(AppendRequest(room, user, "hello (edited?)", "same"))
    assert first == again
    history = await store.history(room, before=None, after=None, limit=10)
    assert [m.text for m in history] == ["hello"]
    other = await store.create_room("other", private=False, owner=user)
    with pytest.raises(Conflict):
        await store.append(AppendRequest(other, user, "x", "same"))


async def test_store_append_to_missing_room_fails_alone(store: SQLiteStore) -> None:
    user = await store.create_user("ann", "hash")
    ghost = Room(999, "ghost", False, False, None, 0)
    with pytest.raises(NotFound):
        await store.append(AppendRequest(ghost, user, "x", "g"))


async def test_store_history_pages(store: SQLiteStore) -> None:
    user = await store.create_user("ann", "hash")
    room = await _general(store)
    for i in range(10):
        await store.append(AppendRequest(room, user, str(i), f"k{i}"))

    def seqs(ms: Sequence[Message]) -> list[int]:
        return [m.seq for m in ms]

    assert seqs(await store.history(room, before=None, after=None, limit=3)) == [8, 9, 10]
    assert seqs(await store.history(room, before=8, after=None, limit=3)) == [5, 6, 7]
    assert seqs(await store.history(room, before=None, after=8, limit=5)) == [9, 10]


async def test_store_survives_reopen_with_same_epoch_and_seq(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with trio.open_nursery() as nursery:
        first = SQLiteStore(path)
        await nursery.start(first.run)
        user = await first.create_user("ann", "hash")
        room = await _general(first)
        await first.append(AppendRequest(room, user, "one", "1"))
        epoch = first.epoch
        first.close()
    async with trio.open_nursery() as nursery:
        second = SQLiteStore(path)
        await nursery.start(second.run)
        assert second.epoch == epoch
        ack = await second.append(AppendRequest(room, User(user.id, "ann"), "two", "2"))
        assert ack.seq == 2
        second.close()
        with pytest.raises(Unavailable):
            await second.append(AppendRequest(room, user, "late", "3"))


async def test_store_user_names_are_unique_ignoring_case(store: SQLiteStore) -> None:
    await store.create_user("Ann", "hash")
    with pytest.raises(Conflict) as caught:
        await store.create_user("ann", "hash")
    assert caught.value.code == "name_taken"


async def test_store_dm_is_found_again_and_has_two_members(store: SQLiteStore) -> None:
    ann, bob = await store.create_user("ann", "h"), await store.create_user("bob", "h")
    room = await store.open_dm(ann, bob)
    assert await store.open_dm(bob, ann) == room
    assert await store.members(room) == ["ann", "bob"]
    assert room.private and room.dm


@pytest.mark.parametrize("look_alike", ["aIice", "ALICE", "a1ice", "AL1CE", "alIce"])
async def test_store_user_names_that_look_alike_clash(store: SQLiteStore, look_alike: str) -> None:
    await store.create_user("alice", "hash")
    with pytest.raises(Conflict) as caught:
        await store.create_user(look_alike, "hash")
    assert caught.value.code == "name_taken"


@pytest.mark.parametrize(
    ("first", "second"), [("mary", "rnary"), ("wendy", "vvendy"), ("o0", "OO")]
)
async def test_store_multi_letter_and_digit_look_alikes_clash(
    store: SQLiteStore, first: str, second: str
) -> None:
    await store.create_user(first, "hash")
    with pytest.raises(Conflict):
        await store.create_user(second, "hash")


async def test_store_names_that_merely_resemble_are_accepted(store: SQLiteStore) -> None:
    for name in ("alice", "alicia", "bob", "b0b1", "rn-x", "r_n"):
        await store.create_user(name, "hash")


async def test_store_migration_adds_skeletons_to_an_old_database(tmp_path: Path) -> None:
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
