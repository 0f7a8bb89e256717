"""Local blob store: content-addressed files under `<data dir>/blobs`, records in SQLite.

A blob is written to a temporary file in `blobs/tmp`, hashed on the way, fsynced, renamed
to `blobs/<first two hex digits>/<sha256>` and the directory fsynced, all before `put`
returns (and so before an upload is acked): a crash leaves either the whole blob or a
stray temporary file (cleared at start), never half a blob under its name. Names come only
from hashes, never from what a client sent. The records live in `files.sqlite3` beside the
message store (a second database: the file catalogue is this contract's, not the Store's).
Blocking calls run in worker threads.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import trio

from ..errors import StorageError
from . import CHUNK_BYTES, Blob, FileRecord, Reservation, reservations

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
    message_id TEXT
)"""
_COLUMNS = (
    "id, room, user_id, name, size, content_type, sha256, created_ms, width, height, "
    "thumb_sha256, attached_to, message_id"
)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    """Start with `await nursery.start(blobs.run)`."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "blobs"
        self.index_path = data_dir / "files.sqlite3"
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
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        for stray in tmp.iterdir():  # a crash mid-upload: never acked, never named
            stray.unlink(missing_ok=True)
        db = sqlite3.connect(self.index_path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        db.execute("CREATE INDEX IF NOT EXISTS files_user ON files (user_id)")
        db.execute("CREATE INDEX IF NOT EXISTS files_sha ON files (sha256)")
        db.execute("CREATE INDEX IF NOT EXISTS files_message ON files (message_id)")
        db.execute(reservations.SQLITE_TABLE)
        db.execute("DELETE FROM reservations")  # one process owns the directory: none live
        self._db = db

    def _path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise StorageError("not a blob name")
        return self.root / sha256[:2] / sha256

    # ---- bytes ---------------------------------------------------------------------------

    async def put(self, chunks: AsyncIterable[bytes]) -> Blob:
        fd, tmp_name = await trio.to_thread.run_sync(self._temp_file)
        digest = hashlib.sha256()
        size = 0
        done = False
        try:
            async for chunk in chunks:
                size += len(chunk)
                await trio.to_thread.run_sync(_write_all, fd, chunk, digest)
            sha = digest.hexdigest()
            await trio.to_thread.run_sync(_sync_close, fd)
            fd = -1
            await trio.to_thread.run_sync(self._publish, tmp_name, sha)
            done = True
            return Blob(sha, size)
        finally:
            if not done:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(_discard, fd, tmp_name)

    def _temp_file(self) -> tuple[int, str]:
        name = str(self.root / "tmp" / os.urandom(12).hex())
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), name

    def _publish(self, tmp_name: str, sha: str) -> None:
        final = self._path(sha)
        final.parent.mkdir(exist_ok=True)
        os.replace(tmp_name, final)
        _fsync_dir(final.parent)

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        path = self._path(sha256)
        try:
            handle = await trio.open_file(path, "rb")
        except FileNotFoundError:
            raise StorageError("blob missing") from None
        async with handle:
            await handle.seek(start)
            left = None if end is None else end - start
            while left is None or left > 0:
                want = CHUNK_BYTES if left is None else min(CHUNK_BYTES, left)
                data = await handle.read(want)
                if not data:
                    return
                if left is not None:
                    left -= len(data)
                yield data

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
                db.execute(f"INSERT INTO files VALUES ({marks})", values)
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

    async def claim(self, file_ids: Sequence[str], *, user_id: int, room: str, key: str) -> bool:
        ids = list(dict.fromkeys(file_ids))

        def claim(db: sqlite3.Connection) -> bool:
            marks = ", ".join("?" * len(ids))
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute(
                    f"UPDATE files SET attached_to = ? WHERE id IN ({marks}) AND user_id = ? "
                    "AND room = ? AND (attached_to IS NULL OR attached_to = ?)",
                    (key, *ids, user_id, room, key),
                )
                ok = cur.rowcount == len(ids)
                db.execute("COMMIT" if ok else "ROLLBACK")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return ok

        return bool(ids) and await self._run(claim)

    async def unclaim(self, file_ids: Sequence[str], *, key: str) -> None:
        ids = list(file_ids)
        marks = ", ".join("?" * len(ids))
        await self._run(
            lambda db: db.execute(
                f"UPDATE files SET attached_to = NULL WHERE id IN ({marks}) "
                "AND attached_to = ? AND message_id IS NULL",
                (*ids, key),
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
        def remove(db: sqlite3.Connection) -> tuple[int, list[str]]:
            count = db.execute(
                "SELECT COUNT(*) FROM files WHERE message_id = ?", (message_id,)
            ).fetchone()[0]
            return int(count), _remove(db, "message_id = ?", [message_id])

        count, orphans = await self._run(remove)
        await trio.to_thread.run_sync(self._unlink, orphans)
        return count

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
            orphans = await self._run(lambda db: _remove(db, where, ids))
            await trio.to_thread.run_sync(self._unlink, orphans)

    async def remove_unattached(self, before_ms: int) -> int:
        def remove(db: sqlite3.Connection) -> tuple[int, list[str]]:
            count = db.execute(
                "SELECT COUNT(*) FROM files WHERE attached_to IS NULL AND created_ms < ?",
                (before_ms,),
            ).fetchone()[0]
            return int(count), _remove(db, "attached_to IS NULL AND created_ms < ?", [before_ms])

        count, orphans = await self._run(remove)
        await trio.to_thread.run_sync(self._unlink, orphans)
        return count

    def _unlink(self, shas: list[str]) -> None:
        for sha in shas:
            self._path(sha).unlink(missing_ok=True)


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


def _remove(db: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[str]:
    """Delete the matching records; the blobs no remaining record names."""
    db.execute("BEGIN IMMEDIATE")
    try:
        rows = db.execute(f"SELECT sha256, thumb_sha256 FROM files WHERE {where}", params)
        shas = {sha for row in rows for sha in row if sha}
        db.execute(f"DELETE FROM files WHERE {where}", params)
        orphans = [
            sha
            for sha in shas
            if db.execute(
                "SELECT 1 FROM files WHERE sha256 = ? OR thumb_sha256 = ? LIMIT 1", (sha, sha)
            ).fetchone()
            is None
        ]
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return orphans


def _write_all(fd: int, data: bytes, digest: Any) -> None:
    digest.update(data)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(fd: int, tmp_name: str) -> None:
    if fd >= 0:
        os.close(fd)
    Path(tmp_name).unlink(missing_ok=True)
