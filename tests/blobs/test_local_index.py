"""The local blob store's index (files.sqlite3) made by an earlier NoChat is upgraded in
place when opened: claims get a time (so reconciliation can judge them), blobs can be
collected."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio

from nochat.blobs.candidates import wall_ms
from nochat.blobs.local import LocalBlobStore

#: files.sqlite3's table as NoChat wrote it before claims had a time.
OLD_FILES = """CREATE TABLE files (
    id TEXT PRIMARY KEY, room TEXT NOT NULL, user_id INTEGER NOT NULL, name TEXT NOT NULL,
    size INTEGER NOT NULL, content_type TEXT NOT NULL, sha256 TEXT NOT NULL,
    created_ms INTEGER NOT NULL, width INTEGER, height INTEGER, thumb_sha256 TEXT,
    attached_to TEXT, message_id TEXT
)"""


async def test_local_index_from_before_claim_times_is_upgraded(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "files.sqlite3")
    with old:
        old.execute(OLD_FILES)
        insert = "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?)"
        row = ("general", 1, "a.bin", 1, "text/plain", "0" * 64, 5)
        old.execute(insert, ("a" * 32, *row, "1:c1", None))  # claimed, not bound
        old.execute(insert, ("b" * 32, *row, None, None))
    old.close()
    before = wall_ms()
    blobs = LocalBlobStore(tmp_path)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(30):
            await nursery.start(blobs.run)
            claimed, free = await blobs.file("a" * 32), await blobs.file("b" * 32)
            # A claim made before has the upgrade's time: judged a margin from now.
            assert claimed is not None and claimed.claimed_ms is not None
            assert claimed.claimed_ms >= before and claimed.attached_to == "1:c1"
            assert free is not None and free.claimed_ms is None
            assert await blobs.claim(["b" * 32], user_id=1, room="general", key="1:c2", now_ms=9)
            assert [r.id for r in await blobs.attached_files(after="", limit=10)] == [
                "a" * 32,
                "b" * 32,
            ]
            await blobs.remove_files(["a" * 32])
            assert await blobs.collect(wall_ms() + 1) == 0  # "b" still names that blob
        blobs.close()
