"""Local blob store: content-addressed files under `<data dir>/blobs`, records in SQLite.

The bytes are local_dir.py's (written, fsynced and renamed before `put` returns). The
records live in `files.sqlite3` beside the message store (a second database: the file
catalogue is this contract's, not the Store's), with the quota reservations
(reservations.py) and the blobs that may be unused (candidates.py, which says when one
is deleted). Blocking calls run in worker threads; the index has one connection, used
one call at a time, so a collection's check and unlink never interleave with a record
being added.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import trio

from ..errors import StorageError
from . import Blob, FileRecord, Reservation, candidates, reservations
from .local_dir import BlobDirectory

T = TypeVar("T")

_SCHEMA = """CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    width INTEGER,
    height INTEGER,
    thumb_sha256 TEXT,
    attached_to TEXT,
    message_id TEXT,
    claimed_ms INTEGER
)"""
_COLUMNS = (
    "id, room, user_id, name, size, content_type, sha256, created_ms, width, height, "
    "thumb_sha256, attached_to, message_id, claimed_ms"
)
_REFERENCED = candidates.REFERENCED.format(m="?")


class LocalBlobStore:
    """Start with `await nursery.start(blobs.run)`."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "blobs"
        self.index_path = data_dir / "files.sqlite3"
        self._dir = BlobDirectory(self.root)
        self._db: sqlite3.Connection | None = None
        self._db_limiter = trio.CapacityLimiter(1)
        self._closed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await trio.to_thread.run_sync(self._open)
        try:
            task_status.started()
            await self._closed.wait()
        finally:
            with trio.CancelScope(shield=True):
                async with self._db_limiter:
                    if self._db is not None:
                        self._db.close()
                        self._db = None

    def close(self) -> None:
        self._closed.set()

    def _open(self) -> None:
        self._dir.open()
        db = sqlite3.connect(self.index_path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        with _transaction(db):
            columns = {row[1] for row in db.execute("PRAGMA table_info(files)")}
            if "claimed_ms" not in columns:  # an index made before claims had a time
                db.execute("ALTER TABLE files ADD COLUMN claimed_ms INTEGER")
                db.execute(
                    "UPDATE files SET claimed_ms = ? WHERE attached_to IS NOT NULL",
                    (candidates.wall_ms(),),
                )
        db.execute("CREATE INDEX IF NOT EXISTS files_user ON files (user_id)")
        db.execute("CREATE INDEX IF NOT EXISTS files_sha ON files (sha256)")
        db.execute("CREATE INDEX IF NOT EXISTS files_thumb ON files (thumb_sha256)")
        db.execute("CREATE INDEX IF NOT EXISTS files_message ON files (message_id)")
        db.execute(reservations.SQLITE_TABLE)
        db.execute("DELETE FROM reservations")  # one process owns the directory: none live
        db.execute(candidates.SQLITE_TABLE)
        db.execute(candidates.SQLITE_INDEX)
        self._db = db

    # ---- bytes ---------------------------------------------------------------------------

    async def put(self, chunks: AsyncIterable[bytes]) -> Blob:
        async def candidate(blob: Blob) -> None:
            # Before it is named (a crash then leaves no blob unaccounted for): collected
            # unless a record names it (candidates.py).
            now = candidates.wall_ms()
            await self._run(lambda db: candidates.mark(db.execute, "?", [blob.sha256], now))

        return await self._dir.put(chunks, candidate)

    def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        return self._dir.read(sha256, start, end)

    async def collect(self, before_ms: int) -> int:
        def collect(db: sqlite3.Connection) -> int:
            removed = 0
            settled: list[str] = []
            later: list[tuple[int, str]] = []
            for sha in candidates.due(db.execute, "?", before_ms):
                if db.execute(f"SELECT {_REFERENCED}", (sha, sha)).fetchone()[0]:
                    settled.append(sha)
                    continue
                put_ms = self._dir.remove_unless_put_since(sha, before_ms)
                if put_ms is None:
                    settled.append(sha)
                    removed += 1
                else:
                    later.append((put_ms, sha))
            with _transaction(db):
                db.executemany("DELETE FROM doomed_blobs WHERE sha256 = ?", [(s,) for s in settled])
                db.executemany("UPDATE doomed_blobs SET since_ms = ? WHERE sha256 = ?", later)
            return removed

        return await self._run(collect)

    # ---- records -------------------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._db is None:
                raise StorageError("the blob store is closed")
            try:
                return fn(self._db)
            except sqlite3.Error as exc:
                raise StorageError(f"file index: {exc.__class__.__name__}") from exc

        return await trio.to_thread.run_sync(call, limiter=self._db_limiter)

    async def add_file(self, record: FileRecord, reservation: str | None = None) -> None:
        values = msgspec.structs.astuple(record)  # the columns, in field order
        marks = ", ".join("?" * len(values))

        def add(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(f"INSERT INTO files ({_COLUMNS}) VALUES ({marks})", values)
                if reservation is not None:
                    reservations.release(db.execute, "?", reservation)

        await self._run(add)

    async def reserve(
        self, user_id: int, *, at_least: int, at_most: int, quota: int, now_ms: int
    ) -> Reservation | None:
        def reserve(db: sqlite3.Connection) -> Reservation | None:
            with _transaction(db):
                return reservations.grant(
                    db.execute,
                    "?",
                    user_id,
                    at_least=at_least,
                    at_most=at_most,
                    quota=quota,
                    now_ms=now_ms,
                )

        return await self._run(reserve)

    async def release(self, reservation: str) -> None:
        await self._run(lambda db: reservations.release(db.execute, "?", reservation))

    async def file(self, file_id: str) -> FileRecord | None:
        def get(db: sqlite3.Connection) -> FileRecord | None:
            row = db.execute(f"SELECT {_COLUMNS} FROM files WHERE id = ?", (file_id,)).fetchone()
            return None if row is None else FileRecord(*row)

        return await self._run(get)

    async def attached_files(self, *, after: str, limit: int) -> list[FileRecord]:
        def page(db: sqlite3.Connection) -> list[FileRecord]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM files WHERE id > ? AND attached_to IS NOT NULL "
                "ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
            return [FileRecord(*row) for row in rows]

        return await self._run(page)

    async def claim(
        self, file_ids: Sequence[str], *, user_id: int, room: str, key: str, now_ms: int
    ) -> bool:
        ids = list(dict.fromkeys(file_ids))

        def claim(db: sqlite3.Connection) -> bool:
            marks = ", ".join("?" * len(ids))
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute(
                    f"UPDATE files SET attached_to = ?, claimed_ms = ? WHERE id IN ({marks}) "
                    "AND user_id = ? AND room = ? AND (attached_to IS NULL OR attached_to = ?)",
                    (key, now_ms, *ids, user_id, room, key),
                )
                ok = cur.rowcount == len(ids)
                db.execute("COMMIT" if ok else "ROLLBACK")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return ok

        return bool(ids) and await self._run(claim)

    async def unclaim(
        self, file_ids: Sequence[str], *, key: str, claimed_before_ms: int | None = None
    ) -> None:
        ids = list(file_ids)
        marks = ", ".join("?" * len(ids))
        before = "" if claimed_before_ms is None else " AND claimed_ms < ?"
        params = (*ids, key) if claimed_before_ms is None else (*ids, key, claimed_before_ms)
        await self._run(
            lambda db: db.execute(
                f"UPDATE files SET attached_to = NULL, claimed_ms = NULL WHERE id IN ({marks}) "
                f"AND attached_to = ? AND message_id IS NULL{before}",
                params,
            )
        )

    async def bind(self, file_ids: Sequence[str], message_id: str) -> None:
        ids = list(file_ids)
        marks = ", ".join("?" * len(ids))
        await self._run(
            lambda db: db.execute(
                f"UPDATE files SET message_id = ? WHERE id IN ({marks})", (message_id, *ids)
            )
        )

    async def remove_message(self, message_id: str) -> int:
        return await self._run(lambda db: _remove(db, "message_id = ?", [message_id]))

    async def used_bytes(self, user_id: int) -> int:
        def used(db: sqlite3.Connection) -> int:
            row = db.execute(
                "SELECT COALESCE(SUM(size), 0) FROM files WHERE user_id = ?", (user_id,)
            ).fetchone()
            return int(row[0])

        return await self._run(used)

    async def remove_files(self, file_ids: Sequence[str]) -> None:
        ids = list(file_ids)
        if ids:
            where = "id IN ({})".format(", ".join("?" * len(ids)))
            await self._run(lambda db: _remove(db, where, ids))

    async def remove_unattached(self, before_ms: int) -> int:
        where = "attached_to IS NULL AND message_id IS NULL AND created_ms < ?"
        return await self._run(lambda db: _remove(db, where, [before_ms]))


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (the write lock at once: nothing else reads in between) … COMMIT."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _remove(db: sqlite3.Connection, where: str, params: Sequence[Any]) -> int:
    """Delete the matching records (how many); their blobs become candidates, at once."""
    with _transaction(db):
        rows = db.execute(f"SELECT sha256, thumb_sha256 FROM files WHERE {where}", params)
        shas = [sha for row in rows.fetchall() for sha in row]
        count = db.execute(f"DELETE FROM files WHERE {where}", params).rowcount
        candidates.mark(db.execute, "?", shas, 0)
    return int(count)
