"""The BlobStore contract, run on every backend (local directory, PostgreSQL)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import trio

from nochat.blobs import (
    CHUNK_BYTES,
    RESERVATION_TTL_MS,
    BlobStore,
    FileRecord,
    Reservation,
    new_file_id,
)
from nochat.blobs.candidates import COLLECT_BATCH, wall_ms
from nochat.blobs.local import LocalBlobStore
from nochat.blobs.postgres import PostgresBlobStore
from nochat.errors import StorageError
from nochat.store.postgres_schema import migrate


@pytest.fixture(params=["local", "postgres"])
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    store: BlobStore
    if request.param == "local":
        store = LocalBlobStore(tmp_path)
    else:
        url = request.getfixturevalue("pg_url")
        with psycopg.connect(url) as conn:  # what the PostgreSQL store does when it starts
            migrate(conn)
        store = PostgresBlobStore(url)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(30):
            await nursery.start(store.run)
        yield store
        store.close()


async def chunks_of(data: bytes, step: int = 100_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i : i + step]


async def read_all(blobs: BlobStore, sha: str, start: int = 0, end: int | None = None) -> bytes:
    out = bytearray()
    async for piece in blobs.read(sha, start, end):
        assert len(piece) <= CHUNK_BYTES
        out += piece
    return bytes(out)


def record(
    sha: str, size: int, *, user_id: int = 1, room: str = "general", **kw: object
) -> FileRecord:
    return FileRecord(
        new_file_id(),
        room,
        user_id,
        "a.bin",
        size,
        "application/octet-stream",
        sha,
        int(kw.pop("created_ms", 1_000)),
        **kw,  # type: ignore[arg-type]
    )


async def test_blobs_put_then_read_whole_and_ranges(blobs: BlobStore) -> None:
    data = bytes(range(256)) * (CHUNK_BYTES * 3 // 256 + 7)
    with trio.fail_after(30):
        blob = await blobs.put(chunks_of(data))
        assert blob.sha256 == hashlib.sha256(data).hexdigest()
        assert blob.size == len(data)
        assert await read_all(blobs, blob.sha256) == data
        for start, end in [(0, 1), (CHUNK_BYTES - 3, CHUNK_BYTES + 5), (len(data) - 10, None)]:
            assert await read_all(blobs, blob.sha256, start, end) == data[start:end]


async def test_blobs_failed_put_leaves_nothing(blobs: BlobStore, tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (CHUNK_BYTES + 1)
        raise ValueError("client went away")

    with trio.fail_after(30), pytest.raises(ValueError, match="went away"):
        await blobs.put(broken())
    if isinstance(blobs, LocalBlobStore):
        assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


async def test_blobs_same_bytes_twice_share_one_blob(blobs: BlobStore) -> None:
    with trio.fail_after(30):
        a = await blobs.put(chunks_of(b"same bytes"))
        b = await blobs.put(chunks_of(b"same bytes"))
        assert a == b
        first, second = record(a.sha256, a.size), record(a.sha256, a.size)
        await blobs.add_file(first)
        await blobs.add_file(second)
        await blobs.remove_files([first.id])
        assert await read_all(blobs, a.sha256) == b"same bytes"  # second still names it
        await blobs.remove_files([second.id])
        assert await read_all(blobs, a.sha256) == b"same bytes"  # put just now: kept
        assert await blobs.collect(wall_ms() + 1) == 1  # nothing names it, no put since
        with pytest.raises(StorageError, match="missing"):
            await read_all(blobs, a.sha256)


async def test_blobs_records_round_trip_and_quota(blobs: BlobStore) -> None:
    with trio.fail_after(30):
        blob = await blobs.put(chunks_of(b"hello"))
        rec = record(blob.sha256, 5, user_id=7, width=3, height=4)
        await blobs.add_file(rec)
        assert await blobs.file(rec.id) == rec
        assert await blobs.file(new_file_id()) is None
        await blobs.add_file(record(blob.sha256, 5, user_id=7))
        assert await blobs.used_bytes(7) == 10
        assert await blobs.used_bytes(8) == 0


async def test_blobs_claim_rules(blobs: BlobStore) -> None:
    with trio.fail_after(30):
        blob = await blobs.put(chunks_of(b"x"))
        mine = record(blob.sha256, 1, user_id=1)
        theirs = record(blob.sha256, 1, user_id=2)
        elsewhere = record(blob.sha256, 1, user_id=1, room="other")
        for r in (mine, theirs, elsewhere):
            await blobs.add_file(r)
        assert not await blobs.claim(
            [mine.id, theirs.id], user_id=1, room="general", key="1:a", now_ms=5
        )
        assert not await blobs.claim([elsewhere.id], user_id=1, room="general", key="1:a", now_ms=5)
        assert (await blobs.file(mine.id)) == mine  # a refused claim changes nothing
        assert await blobs.claim([mine.id], user_id=1, room="general", key="1:a", now_ms=5)
        retry = await blobs.claim([mine.id], user_id=1, room="general", key="1:a", now_ms=6)
        assert retry  # a retry claims them anew
        assert not await blobs.claim([mine.id], user_id=1, room="general", key="1:b", now_ms=5)
        assert not await blobs.claim([], user_id=1, room="general", key="1:c", now_ms=5)
        found = await blobs.file(mine.id)
        assert found is not None and (found.attached_to, found.claimed_ms) == ("1:a", 6)


async def test_blobs_remove_unattached_before_a_time(blobs: BlobStore) -> None:
    with trio.fail_after(30):
        blob = await blobs.put(chunks_of(b"y"))
        old = record(blob.sha256, 1, created_ms=100)
        new = record(blob.sha256, 1, created_ms=900)
        kept = record(blob.sha256, 1, created_ms=100)
        for r in (old, new, kept):
            await blobs.add_file(r)
        assert await blobs.claim([kept.id], user_id=1, room="general", key="1:k", now_ms=5)
        assert await blobs.remove_unattached(500) == 1
        assert await blobs.file(old.id) is None
        assert await blobs.file(new.id) is not None
        assert await blobs.file(kept.id) is not None


async def test_blobs_reservations_never_pass_the_quota_together(blobs: BlobStore) -> None:
    """Uploads of one user at once: each reserves before its body is read, and what the
    reservations and the files hold together stays within the quota. On PostgreSQL the
    reservations race from two stores (two nodes) on pooled connections: without the
    user's lock, 4 to 6 of these 16 were granted."""
    quota, each = 1000, 300
    async with trio.open_nursery() as nursery:
        nodes = [blobs]
        if isinstance(blobs, PostgresBlobStore):
            nodes.append(PostgresBlobStore(blobs.url))
            with trio.fail_after(30):
                await nursery.start(nodes[1].run)
        with trio.fail_after(60):
            for user_id in (11, 12, 13):
                granted: list[Reservation] = []

                async def reserve(
                    node: BlobStore, user_id: int = user_id, granted: list[Reservation] = granted
                ) -> None:
                    found = await node.reserve(
                        user_id, at_least=each, at_most=each, quota=quota, now_ms=1_000
                    )
                    if found is not None:
                        granted.append(found)

                async with trio.open_nursery() as racers:
                    for i in range(16):
                        racers.start_soon(reserve, nodes[i % len(nodes)])
                assert [r.nbytes for r in granted] == [each] * 3
        for node in nodes[1:]:
            node.close()
    with trio.fail_after(30):
        # Another user's quota is their own; "as much as is left" takes what is left.
        assert await blobs.reserve(2, at_least=0, at_most=each, quota=quota, now_ms=1_000)
        rest = await blobs.reserve(13, at_least=0, at_most=each, quota=quota, now_ms=1_000)
        assert rest is not None and rest.nbytes == quota - 3 * each
        # A stored file takes its reservation's place in one step.
        blob = await blobs.put(chunks_of(b"z" * each))
        await blobs.add_file(record(blob.sha256, each, user_id=13), granted[0].id)
        assert await blobs.used_bytes(13) == each
        assert await blobs.reserve(13, at_least=1, at_most=1, quota=quota, now_ms=1_000) is None
        await blobs.release(granted[1].id)
        again = await blobs.reserve(13, at_least=each, at_most=each, quota=quota, now_ms=1_000)
        assert again is not None
        # A reservation whose upload never ended (its node died) expires.
        later = 1_000 + RESERVATION_TTL_MS
        found = await blobs.reserve(13, at_least=0, at_most=quota, quota=quota, now_ms=later)
        assert found is not None and found.nbytes == quota - each


async def test_blobs_unclaim_frees_a_refused_sends_files(blobs: BlobStore) -> None:
    with trio.fail_after(30):
        blob = await blobs.put(chunks_of(b"u"))
        refused, bound = record(blob.sha256, 1), record(blob.sha256, 1)
        for r in (refused, bound):
            await blobs.add_file(r)
        assert await blobs.claim(
            [refused.id, bound.id], user_id=1, room="general", key="1:a", now_ms=5
        )
        await blobs.bind([bound.id], "m1")
        await blobs.unclaim([refused.id, bound.id], key="1:other")  # not that send's
        assert not await blobs.claim([refused.id], user_id=1, room="general", key="1:b", now_ms=5)
        await blobs.unclaim([refused.id, bound.id], key="1:a")
        assert await blobs.claim([refused.id], user_id=1, room="general", key="1:b", now_ms=5)
        kept = await blobs.file(bound.id)  # a committed message's file stays its own
        assert kept is not None and (kept.attached_to, kept.message_id) == ("1:a", "m1")


def after_this_ms() -> int:
    """The first wall-clock ms after the current one, once it has begun (a spin of under
    a millisecond, not a wait for an event): what is put from then on is put at or after
    it."""
    now = wall_ms()
    while wall_ms() <= now:
        pass
    return now + 1


async def test_blobs_collect_spares_a_blob_an_upload_has_put_but_not_named(
    blobs: BlobStore,
) -> None:
    """A file expires unattached while a new upload of the same bytes has put them but not
    yet added its record (its thumbnail is being made): the sweep must leave the blob.
    Before, removing the last record unlinked (deleted) the blob at once, and the new
    record named nothing: "blob missing" on every download."""
    data = b"the same bytes, uploaded twice"
    with trio.fail_after(30):
        first = await blobs.put(chunks_of(data))
        expired = record(first.sha256, len(data), created_ms=100)
        await blobs.add_file(expired)
        lone = await blobs.put(chunks_of(b"put, never named"))  # an upload that failed
        margin = after_this_ms()  # puts from here on are within the margin
        again = await blobs.put(chunks_of(data))  # the new upload, its record not added yet
        assert again == first
        # The sweep: expired unattached files go, then the blobs nothing names and
        # nothing put since the margin's start.
        assert await blobs.remove_unattached(500) == 1
        assert await blobs.file(expired.id) is None
        assert await blobs.collect(margin) == 1  # the failed upload's bytes only
        with pytest.raises(StorageError, match="missing"):
            await read_all(blobs, lone.sha256)
        new = record(again.sha256, len(data))
        await blobs.add_file(new)
        assert await read_all(blobs, new.sha256) == data
        # Named again, it is no candidate any more; once its last record goes and the
        # margin has passed its put, it does go.
        assert await blobs.collect(wall_ms() + 1) == 0
        assert await read_all(blobs, new.sha256) == data
        await blobs.remove_files([new.id])
        assert await blobs.collect(wall_ms() + 1) == 1
        with pytest.raises(StorageError, match="missing"):
            await read_all(blobs, new.sha256)


async def test_blobs_collect_settles_a_bounded_batch_per_call(blobs: BlobStore) -> None:
    count = COLLECT_BATCH + 3
    with trio.fail_after(60):
        shas = [(await blobs.put(chunks_of(b"%d" % i))).sha256 for i in range(count)]
        later = wall_ms() + 1
        assert await blobs.collect(later) == COLLECT_BATCH
        assert await blobs.collect(later) == 3
        assert await blobs.collect(later) == 0
        for sha in (shas[0], shas[-1]):
            with pytest.raises(StorageError, match="missing"):
                await read_all(blobs, sha)


async def test_blobs_unclaim_before_a_time_spares_a_newer_claim(blobs: BlobStore) -> None:
    with trio.fail_after(30):
        blob = await blobs.put(chunks_of(b"c"))
        mine = record(blob.sha256, 1)
        await blobs.add_file(mine)
        assert await blobs.claim([mine.id], user_id=1, room="general", key="1:a", now_ms=1_000)
        await blobs.unclaim([mine.id], key="1:a", claimed_before_ms=1_000)  # a retry's claim
        found = await blobs.file(mine.id)
        assert found is not None and (found.attached_to, found.claimed_ms) == ("1:a", 1_000)
        await blobs.unclaim([mine.id], key="1:a", claimed_before_ms=1_001)
        found = await blobs.file(mine.id)
        assert found is not None and (found.attached_to, found.claimed_ms) == (None, None)


async def test_blobs_attached_files_pages_by_id(blobs: BlobStore) -> None:
    with trio.fail_after(30):
        blob = await blobs.put(chunks_of(b"p"))
        files = sorted((record(blob.sha256, 1) for _ in range(5)), key=lambda r: r.id)
        for r in files:
            await blobs.add_file(r)
        claimed = [files[0], files[2], files[3], files[4]]  # files[1] stays unattached
        for i, r in enumerate(claimed):
            assert await blobs.claim([r.id], user_id=1, room="general", key=f"1:{i}", now_ms=7)
        await blobs.bind([files[3].id], "m3")
        first = await blobs.attached_files(after="", limit=2)
        rest = await blobs.attached_files(after=first[-1].id, limit=2)
        assert [r.id for r in first + rest] == [r.id for r in claimed]
        assert [r.message_id for r in first + rest] == [None, None, "m3", None]
        assert await blobs.attached_files(after=rest[-1].id, limit=2) == []
