"""FileReconciler against a real store and blob store (SQLite + local directory, and
PostgreSQL for both): the file catalogue made to agree with the room log when the
fast path lost a change."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from nochat.blobs import BlobStore, FileRecord, new_file_id
from nochat.blobs.local import LocalBlobStore
from nochat.blobs.postgres import PostgresBlobStore
from nochat.file_reconcile import FileReconciler
from nochat.files import FileService, attachment_of
from nochat.store import Ack, AppendRequest, Room, Store, User, now_ms
from nochat.store.postgres import PostgresStore
from nochat.store.sqlite import SQLiteStore

from .support import make_settings

MARGIN_S = 60.0


@dataclass
class Node:
    store: Store
    blobs: BlobStore
    files: FileReconciler


@pytest.fixture(params=["sqlite", "postgres"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Node]:
    store: Store
    blobs: BlobStore
    if request.param == "sqlite":
        store, blobs = SQLiteStore(tmp_path / "db.sqlite3"), LocalBlobStore(tmp_path)
    else:
        url = request.getfixturevalue("pg_url")
        store, blobs = PostgresStore(url, pool_size=4), PostgresBlobStore(url)
    settings = make_settings(tmp_path / "data", upload_claim_margin_s=MARGIN_S)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(30):
            await nursery.start(store.run)  # first: PostgreSQL's migrations
            await nursery.start(blobs.run)
        yield Node(store, blobs, FileReconciler(blobs, store, settings, page=2, pages=2))
        blobs.close()
        store.close()


async def _upload(node: Node, user: User, room: Room) -> FileRecord:
    blob = await node.blobs.put(_once(b"bytes of " + new_file_id().encode()))
    record = FileRecord(
        new_file_id(), room.name, user.id, "f.bin", blob.size, "text/plain", blob.sha256, now_ms()
    )
    await node.blobs.add_file(record)
    return record


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _claim(
    node: Node, user: User, room: Room, cid: str, files: Sequence[FileRecord], at_ms: int
) -> None:
    ids, key = [f.id for f in files], f"{user.id}:{cid}"
    assert await node.blobs.claim(ids, user_id=user.id, room=room.name, key=key, now_ms=at_ms)


async def _send(node: Node, user: User, room: Room, cid: str, files: Sequence[FileRecord]) -> Ack:
    """A send whose files are claimed and whose message commits, but whose bind is lost."""
    await _claim(node, user, room, cid, files, now_ms())
    attachments = tuple(attachment_of(f) for f in files)
    return await node.store.append(AppendRequest(room, user, "", cid, attachments=attachments))


async def _delete(node: Node, user: User, room: Room, message_id: str, cid: str) -> None:
    await node.store.append(AppendRequest(room, user, "", cid, "delete", message_id))


async def _setup(node: Node) -> tuple[User, Room, Room]:
    ann = await node.store.create_user("ann", "h")
    room = await node.store.room("general")
    assert room is not None
    side = await node.store.create_room("side", private=False, owner=ann)
    return ann, room, side


async def test_file_reconcile_repairs_what_the_fast_path_lost_in_bounded_passes(
    node: Node,
) -> None:
    with trio.fail_after(60):
        ann, room, _ = await _setup(node)
        f = [await _upload(node, ann, room) for _ in range(5)]
        sent = await _send(node, ann, room, "c1", [f[0]])  # bind lost
        gone = await _send(node, ann, room, "c2", [f[1]])  # bind and delete lost
        await _delete(node, ann, room, gone.id, "c2-d")
        bound = await _send(node, ann, room, "c3", [f[2]])
        await node.blobs.bind([f[2].id], bound.id)
        await _delete(node, ann, room, bound.id, "c3-d")  # bound, delete lost
        now = now_ms()
        old = now - int(MARGIN_S * 1000) - 1
        await _claim(node, ann, room, "r4", [f[3]], old)  # refused long ago, unclaim lost
        await _claim(node, ann, room, "r5", [f[4]], now)  # may still be in flight
        first = await node.files.run_pass(now)  # 2 pages of 2: four of the five files
        assert node.files.cycles == 0
        second = await node.files.run_pass(now)  # the fifth: the cycle is complete
        assert node.files.cycles == 1
        assert first.bound + second.bound == 1
        assert first.removed + second.removed == 2
        assert first.unclaimed + second.unclaimed == 1
        assert first.bound + first.removed + first.unclaimed <= 4
        states = [await node.blobs.file(r.id) for r in f]
        assert states[0] is not None and states[0].message_id == sent.id
        assert states[1] is None and states[2] is None
        assert states[3] is not None and (states[3].attached_to, states[3].claimed_ms) == (
            None,
            None,
        )
        assert states[4] is not None and states[4].attached_to == f"{ann.id}:r5"
        third = await node.files.run_pass(now)  # nothing left to repair
        assert (third.bound, third.removed, third.unclaimed) == (0, 0, 0)


async def test_file_reconcile_settle_asks_the_log(node: Node) -> None:
    with trio.fail_after(60):
        ann, room, side = await _setup(node)
        listed, unlisted, elsewhere, deleted = [await _upload(node, ann, room) for _ in range(4)]
        ack = await _send(node, ann, room, "s1", [listed])
        claimed = await node.blobs.file(listed.id)
        assert claimed is not None and claimed.message_id is None  # the bind was lost
        settled = await node.files.settle(claimed)
        assert settled is not None and settled.message_id == ack.id  # bound now
        stored = await node.blobs.file(listed.id)
        assert stored is not None and stored.message_id == ack.id
        # The claim's key names a message that does not list the file (a client_id used
        # again after a refused send), or one in another room: not this file's send.
        await _claim(node, ann, room, "s2", [unlisted], now_ms())
        await node.store.append(AppendRequest(room, ann, "no files", "s2"))
        await _claim(node, ann, room, "s3", [elsewhere], now_ms())
        await node.store.append(AppendRequest(side, ann, "over there", "s3"))
        for record in (unlisted, elsewhere):
            fresh = await node.blobs.file(record.id)
            assert fresh is not None
            assert await node.files.settle(fresh) == fresh  # its uploader's alone still
        gone = await _send(node, ann, room, "s4", [deleted])
        await _delete(node, ann, room, gone.id, "s4-d")
        claimed = await node.blobs.file(deleted.id)
        assert claimed is not None and claimed.attached_to is not None
        assert await node.files.settle(claimed) is None
        assert await node.blobs.file(deleted.id) is None
        await _delete(node, ann, room, ack.id, "s1-d")
        assert await node.files.settle(settled) is None  # bound to a deleted message
        assert await node.blobs.file(listed.id) is None


async def test_file_sweep_outlives_a_store_that_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A pass that meets a failing store (here: one not open, Unavailable) is logged and
    the next one runs; before, the error ended the sweep and the app's nursery with it."""
    blobs, store = LocalBlobStore(tmp_path), SQLiteStore(tmp_path / "db.sqlite3")
    files = FileService(blobs, make_settings(tmp_path / "data", upload_grace_s=0.2), store)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(30):
            await nursery.start(blobs.run)
            node = Node(store, blobs, files.reconciler)
            record = await _upload(node, User(1, "ann"), Room(1, "general", False, False, None, 0))
            assert await blobs.claim([record.id], user_id=1, room="general", key="1:c", now_ms=1)
            await nursery.start(files.run)
            await files.wait_sweep()  # the first pass: the store fails it
            await files.wait_sweep()  # and another comes
        assert "file cleanup pass failed" in caplog.text
        nursery.cancel_scope.cancel()
