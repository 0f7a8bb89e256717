"""PostgreSQL blob store: files every node reaches, as chunk rows in the shared database.

A blob is `blobs(sha256, size, chunks)` plus rows `blob_chunks(chunks, n, data)` of
exactly CHUNK_BYTES each (the last may be shorter), so a byte range is read from the rows
that hold it and nothing more. `put` writes each chunk as it arrives under a fresh
`chunks` key, in a worker thread, then names it in one transaction (upserting the blob
with its `put_ms` and making it a candidate, candidates.py): the bytes are committed
before the upload is acked, and a failed or duplicate upload removes its rows. A blob
goes only by `collect`, in one statement that rechecks under the row's lock what makes
it deletable. The tables come from the PostgreSQL store's numbered migrations
(postgres_schema.py: v5, v7, v9), applied when that store starts, which the app does
first.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
import psycopg
import trio
from psycopg_pool import ConnectionPool

from ..errors import StorageError
from . import CHUNK_BYTES, Blob, FileRecord, Reservation, candidates, reservations

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]

#: Connections this node keeps for files (uploads and downloads in flight share them).
POOL_SIZE = 4
POOL_TIMEOUT_S = 5.0
_COLUMNS = (
    "id, room, user_id, name, size, content_type, sha256, created_ms, width, height, "
    "thumb_sha256, attached_to, message_id, claimed_ms"
)
_REFERENCED = candidates.REFERENCED.format(m="b.sha256")


class PostgresBlobStore:
    """Start with `await nursery.start(blobs.run)`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: ConnectionPool[Conn] | None = None
        self._limiter = trio.CapacityLimiter(POOL_SIZE)
        self._closed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await trio.to_thread.run_sync(self._open)
        except psycopg.Error as exc:
            raise StorageError(f"cannot open the blob store: {exc.__class__.__name__}") from exc
        try:
            task_status.started()
            await self._closed.wait()
        finally:
            with trio.CancelScope(shield=True):
                pool, self._pool = self._pool, None
                if pool is not None:
                    await trio.to_thread.run_sync(pool.close)

    def close(self) -> None:
        self._closed.set()

    def _open(self) -> None:
        pool: ConnectionPool[Conn] = ConnectionPool(
            self.url,
            min_size=1,
            max_size=POOL_SIZE,
            timeout=POOL_TIMEOUT_S,
            kwargs={"autocommit": True},
            check=ConnectionPool.check_connection,
            open=False,
        )
        pool.open(wait=True, timeout=POOL_TIMEOUT_S)
        self._pool = pool

    async def _run(self, fn: Callable[[Conn], T]) -> T:
        def call() -> T:
            if self._pool is None:
                raise StorageError("the blob store is closed")
            try:
                with self._pool.connection() as conn:
                    return fn(conn)
            except psycopg.Error as exc:
                raise StorageError(f"blob store: {exc.__class__.__name__}") from exc

        return await trio.to_thread.run_sync(call, limiter=self._limiter)

    # ---- bytes ---------------------------------------------------------------------------

    async def put(self, chunks: AsyncIterable[bytes]) -> Blob:
        key = secrets.token_hex(16)
        digest = hashlib.sha256()
        pending = bytearray()
        size = n = 0
        named = False

        async def flush(data: bytes) -> None:
            nonlocal n
            row = (key, n, data)
            await self._run(lambda c: c.execute("INSERT INTO blob_chunks VALUES (%s, %s, %s)", row))
            n += 1

        try:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                pending += chunk
                while len(pending) >= CHUNK_BYTES:
                    await flush(bytes(pending[:CHUNK_BYTES]))
                    del pending[:CHUNK_BYTES]
            if pending:
                await flush(bytes(pending))
            sha = digest.hexdigest()

            def name(conn: Conn) -> bool:
                now = candidates.wall_ms()
                with conn.transaction():
                    # The candidate's row first, as `collect` locks them: no deadlock. It
                    # waits for a collection of this blob, then inserts the blob again.
                    candidates.mark(conn.execute, "%s", [sha], now)
                    row = conn.execute(
                        "INSERT INTO blobs (sha256, size, chunks, put_ms) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT (sha256) DO UPDATE "
                        "SET put_ms = GREATEST(blobs.put_ms, EXCLUDED.put_ms) RETURNING chunks",
                        (sha, size, key, now),
                    ).fetchone()
                    return row is not None and row[0] == key  # else the stored copy's chunks

            named = await self._run(name)
            return Blob(sha, size)
        finally:
            if not named:  # failed, cancelled, or the same bytes were stored already
                with trio.CancelScope(shield=True):
                    await self._run(
                        lambda c: c.execute("DELETE FROM blob_chunks WHERE chunks = %s", (key,))
                    )

    async def collect(self, before_ms: int) -> int:
        def collect(conn: Conn) -> int:
            with conn.transaction():
                due = candidates.due(conn.execute, "%s", before_ms, " FOR UPDATE SKIP LOCKED")
                # One statement: a concurrent put's upsert either commits first (put_ms is
                # then too new) or waits for this delete and inserts the blob again.
                gone = conn.execute(
                    "DELETE FROM blobs b WHERE b.sha256 = ANY(%s) AND b.put_ms < %s "
                    f"AND NOT {_REFERENCED} RETURNING b.chunks",
                    (due, before_ms),
                ).fetchall()
                conn.execute(
                    "DELETE FROM blob_chunks WHERE chunks = ANY(%s)", ([row[0] for row in gone],)
                )
                conn.execute(  # put since: looked at again once that put is old enough
                    "UPDATE doomed_blobs d SET since_ms = b.put_ms FROM blobs b "
                    f"WHERE d.sha256 = ANY(%s) AND b.sha256 = d.sha256 AND NOT {_REFERENCED}",
                    (due,),
                )
                conn.execute(  # gone, named again, or missing: no candidates any more
                    "DELETE FROM doomed_blobs WHERE sha256 = ANY(%s) AND since_ms < %s",
                    (due, before_ms),
                )
            return len(gone)

        return await self._run(collect)

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        row = await self._run(
            lambda c: c.execute(
                "SELECT chunks, size FROM blobs WHERE sha256 = %s", (sha256,)
            ).fetchone()
        )
        if row is None:
            raise StorageError("blob missing")
        key, size = str(row[0]), int(row[1])
        stop = size if end is None else min(end, size)
        pos = start
        while pos < stop:
            index = pos // CHUNK_BYTES

            def chunk(conn: Conn, index: int = index) -> bytes:
                found = conn.execute(
                    "SELECT data FROM blob_chunks WHERE chunks = %s AND n = %s", (key, index)
                ).fetchone()
                if found is None:
                    raise StorageError("blob chunk missing")
                return bytes(found[0])

            data = await self._run(chunk)
            offset = pos - index * CHUNK_BYTES
            piece = data[offset : offset + (stop - pos)]
            pos += len(piece)
            yield piece

    # ---- records -------------------------------------------------------------------------

    async def add_file(self, record: FileRecord, reservation: str | None = None) -> None:
        values = msgspec.structs.astuple(record)  # the columns, in field order
        marks = ", ".join(["%s"] * len(values))

        def add(conn: Conn) -> None:
            with conn.transaction():
                conn.execute(f"INSERT INTO files ({_COLUMNS}) VALUES ({marks})", values)
                if reservation is not None:
                    reservations.release(conn.execute, "%s", reservation)

        await self._run(add)

    async def reserve(
        self, user_id: int, *, at_least: int, at_most: int, quota: int, now_ms: int
    ) -> Reservation | None:
        def reserve(conn: Conn) -> Reservation | None:
            with conn.transaction():
                # Held to the transaction's end: the user's reservations, one at a time.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)",
                    (reservations.POSTGRES_LOCK_CLASS, user_id),
                )
                return reservations.grant(
                    conn.execute,
                    "%s",
                    user_id,
                    at_least=at_least,
                    at_most=at_most,
                    quota=quota,
                    now_ms=now_ms,
                )

        return await self._run(reserve)

    async def release(self, reservation: str) -> None:
        await self._run(lambda c: reservations.release(c.execute, "%s", reservation))

    async def file(self, file_id: str) -> FileRecord | None:
        row = await self._run(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM files WHERE id = %s", (file_id,)
            ).fetchone()
        )
        return None if row is None else FileRecord(*row)

    async def attached_files(self, *, after: str, limit: int) -> list[FileRecord]:
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM files WHERE id > %s AND attached_to IS NOT NULL "
                "ORDER BY id LIMIT %s",
                (after, limit),
            ).fetchall()
        )
        return [FileRecord(*row) for row in rows]

    async def claim(
        self, file_ids: Sequence[str], *, user_id: int, room: str, key: str, now_ms: int
    ) -> bool:
        ids = list(dict.fromkeys(file_ids))

        def claim(conn: Conn) -> bool:
            conn.execute("BEGIN")
            cur = conn.execute(
                "UPDATE files SET attached_to = %s, claimed_ms = %s WHERE id = ANY(%s) "
                "AND user_id = %s AND room = %s AND (attached_to IS NULL OR attached_to = %s)",
                (key, now_ms, ids, user_id, room, key),
            )
            ok = cur.rowcount == len(ids)
            conn.execute("COMMIT" if ok else "ROLLBACK")  # a partial claim changes nothing
            return ok

        return bool(ids) and await self._run(claim)

    async def unclaim(
        self, file_ids: Sequence[str], *, key: str, claimed_before_ms: int | None = None
    ) -> None:
        ids = list(file_ids)
        await self._run(
            lambda c: c.execute(
                "UPDATE files SET attached_to = NULL, claimed_ms = NULL WHERE id = ANY(%s) "
                "AND attached_to = %s AND message_id IS NULL "
                "AND (%s::bigint IS NULL OR claimed_ms < %s)",
                (ids, key, claimed_before_ms, claimed_before_ms),
            )
        )

    async def bind(self, file_ids: Sequence[str], message_id: str) -> None:
        ids = list(file_ids)
        await self._run(
            lambda c: c.execute(
                "UPDATE files SET message_id = %s WHERE id = ANY(%s)", (message_id, ids)
            )
        )

    async def remove_message(self, message_id: str) -> int:
        return await self._run(lambda c: _remove(c, "message_id = %s", (message_id,)))

    async def used_bytes(self, user_id: int) -> int:
        row = await self._run(
            lambda c: c.execute(
                "SELECT COALESCE(SUM(size), 0) FROM files WHERE user_id = %s", (user_id,)
            ).fetchone()
        )
        return int(row[0]) if row else 0

    async def remove_files(self, file_ids: Sequence[str]) -> None:
        ids = list(file_ids)
        if ids:
            await self._run(lambda c: _remove(c, "id = ANY(%s)", (ids,)))

    async def remove_unattached(self, before_ms: int) -> int:
        return await self._run(
            lambda c: _remove(
                c, "attached_to IS NULL AND message_id IS NULL AND created_ms < %s", (before_ms,)
            )
        )


def _remove(conn: Conn, where: str, params: tuple[Any, ...]) -> int:
    """Delete the matching records (how many); their blobs become candidates, at once."""
    with conn.transaction():
        rows = conn.execute(
            f"DELETE FROM files WHERE {where} RETURNING sha256, thumb_sha256", params
        ).fetchall()
        candidates.mark(conn.execute, "%s", [sha for row in rows for sha in row], 0)
    return len(rows)
