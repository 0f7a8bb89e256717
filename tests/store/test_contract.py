"""The Store contract: every test runs on SQLite and on PostgreSQL (tests/store/conftest.py).

Gapless seqs, idempotent appends, history and replay, heads, the directory (users,
sessions, rooms, members, DMs, read markers, unread), a durable epoch, and refusing a
database newer than this NoChat. Tests of two instances at once (`shared_backend`) run
where several nodes may write one database: PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import psycopg
import pytest
import trio

from nochat.errors import Conflict, Forbidden, NotFound, StorageError, Unavailable
from nochat.store import (
    Ack,
    AppendRequest,
    Message,
    Room,
    RoomView,
    Store,
    User,
    postgres_schema,
    sqlite_schema,
)
from nochat.store.postgres import PostgresStore
from nochat.store.sqlite import SQLiteStore

from .conftest import Backend

START_S = 30


async def _general(store: Store) -> Room:
    room = await store.room("general")
    assert room is not None
    return room


@asynccontextmanager
async def _running(backend: Backend) -> AsyncIterator[Store]:
    """Another instance on the same database (a restart, or a second node), closed after."""
    async with trio.open_nursery() as nursery:
        s = backend.make()
        with trio.fail_after(START_S):
            await nursery.start(s.run)
        try:
            yield s
        finally:
            s.close()


async def _rooms(store: Store, user: User) -> list[RoomView]:
    views, cursor = await store.rooms_for(user, after=None, limit=100)
    assert cursor is None
    return views


def _seqs(ms: Sequence[Message]) -> list[int]:
    return [m.seq for m in ms]


async def test_contract_fresh_database_has_general_and_an_epoch(store: Store) -> None:
    room = await _general(store)
    assert (room.name, room.private, room.head_seq) == ("general", False, 0)
    assert len(store.epoch) == 16
    assert await store.room_count() == 1


async def test_contract_concurrent_appends_are_group_committed_with_gapless_seqs(
    store: Store,
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
    assert _seqs(committed) == list(range(1, 201))  # published in seq order
    stats = store.statistics()
    assert stats.commits < 200  # many appends shared a transaction
    assert stats.committed_messages == 200
    assert await store.head_seq(room) == 200


async def test_contract_retry_returns_the_original_ack(store: Store) -> None:
    user = await store.create_user("ann", "hash")
    room = await _general(store)
    first = await store.append(AppendRequest(room, user, "hello", "same"))
    again = await store.append(AppendRequest(room, user, "hello (edited?)", "same"))
    assert first == again
    history = await store.history(room, before=None, after=None, limit=10)
    assert [m.text for m in history] == ["hello"]
    other = await store.create_room("other", private=False, owner=user)
    with pytest.raises(Conflict) as caught:
        await store.append(AppendRequest(other, user, "x", "same"))
    assert caught.value.code == "duplicate_client_id"


async def test_contract_retries_in_one_batch_share_one_seq(store: Store) -> None:
    user = await store.create_user("ann", "hash")
    room = await _general(store)
    acks: list[Ack] = []

    async def send() -> None:
        acks.append(await store.append(AppendRequest(room, user, "once", "twice")))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(send)
    assert len(set(acks)) == 1 and acks[0].seq == 1
    assert await store.head_seq(room) == 1


async def test_contract_append_to_missing_room_fails_alone(store: Store) -> None:
    user = await store.create_user("ann", "hash")
    room = await _general(store)
    ghost = Room(999, "ghost", False, False, None, 0)
    outcomes: list[Ack | BaseException] = []
    done = trio.Event()

    def collect(result: Ack | BaseException) -> None:
        outcomes.append(result)
        if len(outcomes) == 2:
            done.set()

    await store.submit(AppendRequest(ghost, user, "x", "g"), collect)
    await store.submit(AppendRequest(room, user, "y", "h"), collect)
    with trio.fail_after(START_S):
        await done.wait()
    assert isinstance(outcomes[0], NotFound)
    assert isinstance(outcomes[1], Ack) and outcomes[1].seq == 1


async def test_contract_history_pages_and_replay(store: Store) -> None:
    user = await store.create_user("ann", "hash")
    room = await _general(store)
    for i in range(10):
        await store.append(AppendRequest(room, user, str(i), f"k{i}"))
    assert _seqs(await store.history(room, before=None, after=None, limit=3)) == [8, 9, 10]
    assert _seqs(await store.history(room, before=8, after=None, limit=3)) == [5, 6, 7]
    assert _seqs(await store.history(room, before=None, after=8, limit=5)) == [9, 10]
    page = await store.history(room, before=None, after=0, limit=1)
    assert (page[0].user, page[0].text, page[0].client_id, page[0].room) == (
        "ann",
        "0",
        "k0",
        "general",
    )
    events = await store.replay(room, after=7, limit=2)
    assert [(e.seq, e.kind, e.user, e.payload, e.target) for e in events] == [
        (8, "message", "ann", "7", None),
        (9, "message", "ann", "8", None),
    ]
    assert events[0].id == (await store.history(room, before=9, after=None, limit=1))[0].id


async def test_contract_survives_reopen_with_same_epoch_and_seq(backend: Backend) -> None:
    async with _running(backend) as first:
        user = await first.create_user("ann", "hash")
        room = await _general(first)
        await first.append(AppendRequest(room, user, "one", "1"))
        epoch = first.epoch
    async with _running(backend) as second:
        assert second.epoch == epoch
        ack = await second.append(AppendRequest(room, User(user.id, "ann"), "two", "2"))
        assert ack.seq == 2
        assert (await _general(second)).head_seq == 2
        second.close()
        with pytest.raises(Unavailable):
            await second.append(AppendRequest(room, user, "late", "3"))


async def test_contract_user_names_are_unique_ignoring_case(store: Store) -> None:
    ann = await store.create_user("Ann", "hash")
    with pytest.raises(Conflict) as caught:
        await store.create_user("ann", "hash")
    assert caught.value.code == "name_taken"
    assert await store.user_credentials("ANN") == (ann, "hash")
    assert await store.user_by_name("ann") == ann
    assert await store.user_by_id(ann.id) == ann
    assert await store.user_by_id(ann.id + 100) is None
    assert await store.user_by_name("bob") is None


async def test_contract_sessions_open_extend_and_revoke(store: Store) -> None:
    ann = await store.create_user("ann", "hash")
    session = await store.create_session(ann.id, 10**13)
    assert await store.session(session.id) == session
    longer = await store.extend_session(session.id, 2 * 10**13)
    assert (longer.id, longer.expires_at_ms) == (session.id, 2 * 10**13)
    await store.revoke_session(session.id)
    assert await store.session(session.id) is None
    with pytest.raises(NotFound):
        await store.extend_session(session.id, 3 * 10**13)


async def test_contract_rooms_members_read_markers_and_unread(store: Store) -> None:
    ann, bob = await store.create_user("ann", "h"), await store.create_user("bob", "h")
    general = await _general(store)
    secret = await store.create_room("secret", private=True, owner=ann)
    assert (secret.private, secret.owner_id, secret.head_seq) == (True, ann.id, 0)
    with pytest.raises(Conflict) as caught:
        await store.create_room("secret", private=False, owner=bob)
    assert caught.value.code == "room_exists"
    assert await store.room("secret") == secret
    assert await store.room("nowhere") is None
    assert await store.is_member(secret, ann) and not await store.is_member(secret, bob)
    await store.add_member(general, bob)
    await store.add_member(general, bob)  # twice is once
    for i in range(3):
        await store.append(AppendRequest(general, ann, str(i), f"g{i}"))
    await store.append(AppendRequest(secret, ann, "psst", "s1"))
    views = {v.name: v for v in await _rooms(store, bob)}
    assert list(views) == ["general"]  # a private room bob is not in stays hidden
    assert (views["general"].member, views["general"].head_seq, views["general"].unread) == (
        True,
        3,
        3,
    )
    await store.set_read(general, bob, 2)
    await store.set_read(general, bob, 1)  # a read marker never goes back
    await store.set_read(general, bob, 99)  # nor past the head
    view = (await _rooms(store, bob))[0]
    assert (view.last_read, view.unread) == (3, 0)
    await store.add_member(secret, bob)
    assert await store.members(secret) == ["ann", "bob"]
    views = {v.name: v for v in await _rooms(store, bob)}
    assert (views["secret"].unread, views["general"].unread) == (1, 0)
    ann_views = {v.name: v for v in await _rooms(store, ann)}
    assert ann_views["secret"].unread == 0  # whoever writes has read it
    assert await store.room_count() == 2
    ghost = Room(999, "ghost", False, False, None, 0)
    with pytest.raises(Conflict):
        await store.add_member(ghost, ann)


async def test_contract_room_list_pages_public_rooms_after_all_of_mine(store: Store) -> None:
    ann, bob = await store.create_user("ann", "h"), await store.create_user("bob", "h")
    for name in ("a1", "a2", "a3", "a4", "zz"):
        await store.create_room(name, private=False, owner=ann)
    await store.create_room("mine", private=True, owner=bob)
    await store.add_member(await _general(store), bob)
    views, cursor = await store.rooms_for(bob, after=None, limit=2)
    assert [(v.name, v.member) for v in views] == [
        ("general", True),
        ("mine", True),
        ("a1", False),
        ("a2", False),
    ]
    assert cursor == "a2"
    views, cursor = await store.rooms_for(bob, after=cursor, limit=2)
    assert ([v.name for v in views], cursor) == (["a3", "a4"], "a4")
    views, cursor = await store.rooms_for(bob, after=cursor, limit=2)
    assert ([v.name for v in views], cursor) == (["zz"], None)


async def test_contract_room_owners_are_capped(store: Store) -> None:
    ann = await store.create_user("ann", "h")
    for name in ("r1", "r2"):
        await store.create_room(name, private=False, owner=ann, max_owned=2)
    with pytest.raises(Forbidden) as caught:
        await store.create_room("r3", private=True, owner=ann, max_owned=2)
    assert caught.value.code == "room_limit"
    assert await store.room("r3") is None


@pytest.mark.parametrize("look_alike", ["aIice", "ALICE", "a1ice", "AL1CE", "alIce"])
async def test_contract_user_names_that_look_alike_clash(store: Store, look_alike: str) -> None:
    await store.create_user("alice", "hash")
    with pytest.raises(Conflict) as caught:
        await store.create_user(look_alike, "hash")
    assert caught.value.code == "name_taken"


@pytest.mark.parametrize(
    ("first", "second"), [("mary", "rnary"), ("wendy", "vvendy"), ("o0", "OO")]
)
async def test_contract_multi_letter_and_digit_look_alikes_clash(
    store: Store, first: str, second: str
) -> None:
    await store.create_user(first, "hash")
    with pytest.raises(Conflict):
        await store.create_user(second, "hash")


async def test_contract_names_that_merely_resemble_are_accepted(store: Store) -> None:
    for name in ("alice", "alicia", "bob", "b0b1", "rn-x", "r_n"):
        await store.create_user(name, "hash")


async def test_contract_dm_is_found_again_and_has_two_members(store: Store) -> None:
    ann, bob = await store.create_user("ann", "h"), await store.create_user("bob", "h")
    room = await store.open_dm(ann, bob)
    assert await store.open_dm(bob, ann) == room
    assert await store.members(room) == ["ann", "bob"]
    assert room.private and room.dm
    ack = await store.append(AppendRequest(room, ann, "hi", "d1"))
    assert ack.seq == 1 and await store.head_seq(room) == 1


async def test_contract_two_nodes_append_gapless_and_share_epoch_and_secret(
    shared_backend: Backend,
) -> None:
    async with _running(shared_backend) as one, _running(shared_backend) as two:
        assert one.epoch == two.epoch and one.shared_secret == two.shared_secret
        assert len(one.shared_secret) >= 32
        ann = await one.create_user("ann", "h")
        room = await _general(one)
        acks: list[Ack] = []

        async def send(node: Store, i: int) -> None:
            acks.append(await node.append(AppendRequest(room, ann, str(i), f"n{i}")))

        async with trio.open_nursery() as nursery:
            for i in range(300):
                nursery.start_soon(send, (one, two)[i % 2], i)
        assert sorted(a.seq for a in acks) == list(range(1, 301))
        # A retry that lands on the other node gets the original ack.
        retried = {a.client_id: a for a in acks}
        for i in range(0, 300, 37):
            again = await (two, one)[i % 2].append(AppendRequest(room, ann, "again", f"n{i}"))
            assert again == retried[f"n{i}"]
        assert await one.head_seq(room) == await two.head_seq(room) == 300
        history = await two.history(room, before=None, after=0, limit=500)
        assert _seqs(history) == list(range(1, 301))


async def test_contract_two_nodes_race_the_same_retry(shared_backend: Backend) -> None:
    async with _running(shared_backend) as one, _running(shared_backend) as two:
        ann = await one.create_user("ann", "h")
        room = await _general(one)
        acks: list[Ack] = []

        async def send(node: Store, client_id: str) -> None:
            acks.append(await node.append(AppendRequest(room, ann, "x", client_id)))

        async with trio.open_nursery() as nursery:
            for i in range(40):
                for node in (one, two):
                    nursery.start_soon(send, node, f"r{i}")
        by_client = {a.client_id: a for a in acks}
        assert len(by_client) == 40
        assert all(by_client[a.client_id] == a for a in acks)  # both got the same ack
        assert sorted(a.seq for a in by_client.values()) == list(range(1, 41))
        assert await one.head_seq(room) == 40


async def test_contract_newer_database_is_refused(backend: Backend) -> None:
    async with _running(backend):
        pass
    _mark_newer(backend)
    s = backend.make()
    with pytest.RaisesGroup(pytest.RaisesExc(StorageError, match="newer than this NoChat")):
        async with trio.open_nursery() as nursery:
            await nursery.start(s.run)


def _mark_newer(backend: Backend) -> None:
    """Record a schema version above what this NoChat knows, as a future one would."""
    store = backend.make()
    if isinstance(store, SQLiteStore):
        db = sqlite3.connect(store.path)
        db.execute(f"PRAGMA user_version = {sqlite_schema.SCHEMA_VERSION + 1}")
        db.close()
    else:
        assert isinstance(store, PostgresStore)
        with psycopg.connect(store.url, autocommit=True) as pg:
            newer = postgres_schema.SCHEMA_VERSION + 1
            pg.execute("INSERT INTO schema_migrations VALUES (%s, 0)", (newer,))
