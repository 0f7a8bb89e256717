"""PostgreSQL store: the scale-out backend. Nodes share one database; each group-commits.

psycopg 3's sync API runs in worker threads (its async API is asyncio-only), on
connections from a `psycopg_pool.ConnectionPool`. Like the SQLite store, one writer task
per node takes every pending append and commits them in one transaction, then completes
their acks and hands the batch to the commit listener in seq order.

Seq assignment and the write are one atomic step, and retries never duplicate across
nodes: postgres_append.py says how. Reads and directory writes use the rest of the pool.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TypeVar

import psycopg
import trio
from psycopg_pool import ConnectionPool

from ..errors import Conflict, NotFound, StorageError, Unavailable
from . import (
    Ack,
    AppendCallback,
    AppendRequest,
    CommitListener,
    CommitObserver,
    Event,
    Message,
    Room,
    SearchHit,
    StoreStatistics,
    User,
    UserStatus,
    ignore_commit,
    log_queries,
    postgres_search,
    statuses,
)
from .admin_queries import AdminQueries
from .file_refs import FileRefs
from .postgres_append import Raced, append_batch
from .postgres_directory import Conn, PostgresDirectory
from .postgres_schema import migrate

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Appends that may wait for the writer; a full queue makes senders wait (back-pressure).
APPEND_QUEUE_SIZE = 4096
#: A batch that lost a race with another node's retry is run again at most this often.
BATCH_ATTEMPTS = 3
#: How long a caller waits for a pooled connection before StorageError (server down).
POOL_TIMEOUT_S = 5.0


class PostgresStore(PostgresDirectory, AdminQueries, FileRefs):
    """The shared store. Start with `await nursery.start(store.run)`."""

    _mark, _true = "%s", "true"

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        group_commit_max: int = 512,
        on_commit: CommitListener | None = None,
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self.group_commit_max = group_commit_max
        self.on_commit: CommitListener = on_commit or (lambda batch: None)
        self.observe_commit: CommitObserver = ignore_commit
        self.epoch = ""
        self.shared_secret = ""
        #: "ok", or "failed" while the last group commit failed (the database unreachable).
        self.health = "ok"
        self._pool: ConnectionPool[Conn] | None = None
        # One thread for the writer, the rest of the pool for reads and directory writes.
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(max(1, pool_size - 1))
        self._appends_in, self._appends_out = trio.open_memory_channel[
            tuple[AppendRequest, AppendCallback]
        ](APPEND_QUEUE_SIZE)
        self._closing = False
        self._commits = 0
        self._committed_messages = 0

    # ---- lifecycle ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the pool, migrate, then run the group-commit writer until `close()` drains it."""
        try:
            await trio.to_thread.run_sync(self._open)
        except psycopg.Error as exc:
            raise StorageError(f"cannot open the database: {exc.__class__.__name__}") from exc
        try:
            task_status.started()
            async with self._appends_out:
                async for first in self._appends_out:
                    batch = [first]
                    while len(batch) < self.group_commit_max:
                        try:
                            batch.append(self._appends_out.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    await self._commit(batch)
        finally:
            self._closing = True
            with trio.CancelScope(shield=True):
                async with self._write_limiter:
                    await trio.to_thread.run_sync(self._close_pool)

    def close(self) -> None:
        """Stop taking appends; the writer commits what is queued, then `run` returns."""
        self._closing = True
        self._appends_in.close()

    def statistics(self) -> StoreStatistics:
        return StoreStatistics(self._commits, self._committed_messages)

    def published_head(self, room: Room) -> int | None:
        """Unknown: other nodes append to the same rooms, so a join always reads the store."""
        return None

    def _open(self) -> None:
        pool: ConnectionPool[Conn] = ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.pool_size,
            timeout=POOL_TIMEOUT_S,
            # A read is one statement, not BEGIN/SELECT/COMMIT; writes open transactions.
            kwargs={"autocommit": True},
            check=ConnectionPool.check_connection,  # a connection the server dropped is replaced
            open=False,
        )
        try:
            pool.open(wait=True, timeout=POOL_TIMEOUT_S)
            with pool.connection() as conn:
                migrate(conn)
                with conn.transaction():
                    # The first node to start makes them; every node reads the same values.
                    conn.execute(
                        "INSERT INTO meta VALUES ('epoch', %s), ('secret', %s) "
                        "ON CONFLICT (key) DO NOTHING",
                        (secrets.token_hex(8), secrets.token_hex(32)),
                    )
                    meta = dict(
                        conn.execute(
                            "SELECT key, value FROM meta WHERE key IN ('epoch', 'secret')"
                        ).fetchall()
                    )
        except BaseException:
            pool.close()
            raise
        self.epoch, self.shared_secret = meta["epoch"], meta["secret"]
        self._pool = pool

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # ---- appends (group commit) --------------------------------------------------------

    async def submit(self, request: AppendRequest, done: AppendCallback) -> None:
        if self._closing:
            raise Unavailable("the server is shutting down")
        try:
            await self._appends_in.send((request, done))
        except trio.ClosedResourceError:
            raise Unavailable("the server is shutting down") from None

    async def append(self, request: AppendRequest) -> Ack:
        finished = trio.Event()
        outcome: list[Ack | BaseException] = []

        def done(result: Ack | BaseException) -> None:
            outcome.append(result)
            finished.set()

        await self.submit(request, done)
        await finished.wait()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    async def _commit(self, batch: list[tuple[AppendRequest, AppendCallback]]) -> None:
        requests = [request for request, _ in batch]
        results: list[Ack | BaseException]
        started = trio.current_time()
        try:
            with trio.CancelScope(shield=True):  # a half-finished commit must still report
                results, fresh = await trio.to_thread.run_sync(
                    self._commit_sync, requests, limiter=self._write_limiter
                )
        except (psycopg.Error, StorageError) as exc:
            log.warning("group commit of %d appends failed: %s", len(batch), type(exc).__name__)
            results = [StorageError(f"storage failed: {exc.__class__.__name__}")] * len(batch)
            fresh = []
            self.health = "failed"
        if fresh:
            self.health = "ok"
        self._commits += 1
        self._committed_messages += len(fresh)
        self.observe_commit(trio.current_time() - started, len(batch))
        for (_, done), result in zip(batch, results, strict=True):
            done(result)
        if fresh:
            self.on_commit(fresh)

    def _commit_sync(
        self, requests: list[AppendRequest]
    ) -> tuple[list[Ack | BaseException], list[Event]]:
        pool = self._need_pool()
        for _ in range(BATCH_ATTEMPTS):
            with pool.connection() as conn:
                try:
                    with conn.transaction():
                        return append_batch(conn, requests)
                except Raced:
                    log.info("a batch raced another node's retry; running it again")
                    continue
        raise StorageError("appends kept racing with another node's retries")

    # ---- plumbing ----------------------------------------------------------------------

    def _need_pool(self) -> ConnectionPool[Conn]:
        if self._pool is None:
            raise Unavailable("the store is not open")
        return self._pool

    async def _read(self, fn: Callable[[Conn], T]) -> T:
        return await self._run(fn, transaction=False)

    async def _write(self, fn: Callable[[Conn], T]) -> T:
        return await self._run(fn, transaction=True)

    async def _run(self, fn: Callable[[Conn], T], *, transaction: bool) -> T:
        pool = self._need_pool()

        def call() -> T:
            with pool.connection() as conn:
                if not transaction:
                    return fn(conn)
                with conn.transaction():
                    return fn(conn)

        try:
            return await trio.to_thread.run_sync(call, limiter=self._read_limiter)
        except psycopg.IntegrityError as exc:
            raise Conflict("already exists") from exc
        except psycopg.Error as exc:
            log.warning("store call failed: %s", exc.__class__.__name__)
            raise StorageError(f"storage failed: {exc.__class__.__name__}") from exc

    # ---- reads -------------------------------------------------------------------------

    async def history(
        self, room: Room, *, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        sql, params = log_queries.history(room.id, before, after, limit, "%s")

        def query(c: Conn) -> list[Message]:
            with c.transaction():  # the page and its changes from one snapshot
                c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                found = log_queries.messages(c.execute(sql, params).fetchall())
                return log_queries.fold(c.execute, "%s", found)

        return await self._read(query)

    async def replay(self, room: Room, *, after: int, limit: int) -> list[Event]:
        sql, params = log_queries.replay(room.id, after, limit, "%s")
        return await self._read(lambda c: log_queries.events(c.execute(sql, params).fetchall()))

    async def set_status(self, user: User, state: str, text: str) -> None:
        await self._execute(*statuses.set_status("%s", user, state, text))

    async def set_last_seen(self, user: User, ts: int) -> None:
        await self._execute(*statuses.set_last_seen("%s", user, ts))

    async def _execute(self, sql: str, params: tuple[object, ...]) -> None:
        def write(c: Conn) -> None:
            c.execute(sql, params)

        await self._write(write)

    async def status(self, user: User) -> UserStatus:
        sql, params = statuses.status("%s", user)
        return await self._read(
            lambda c: statuses.from_row(user, c.execute(sql, params).fetchone())
        )

    async def search(
        self, user: User, q: str, *, room: Room | None, before: str | None, limit: int
    ) -> list[SearchHit]:
        room_id = None if room is None else room.id
        return await self._read(
            lambda c: postgres_search.search(
                c, user.id, q, room_id=room_id, before=before, limit=limit
            )
        )

    async def head_seq(self, room: Room) -> int:
        def query(c: Conn) -> int:
            row = c.execute("SELECT head_seq FROM rooms WHERE id = %s", (room.id,)).fetchone()
            if row is None:
                raise NotFound("no such room")
            return int(row[0])

        return await self._read(query)
