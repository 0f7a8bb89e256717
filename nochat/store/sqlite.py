"""SQLite store: WAL, one writer connection that group-commits appends, one reader connection.

Blocking sqlite3 calls run in worker threads, each connection behind its own
`CapacityLimiter(1)`, so the writer's fsync never stalls a history read. Appends (and
the small writes a join or a read marker makes, as `Chore`s) go through one bounded
channel to a single writer task, which commits everything pending
in one transaction, then (in seq order) completes each append and hands the batch to
the commit listener for fan-out. Because that one task assigns every seq, the seq
cache it keeps per room is authoritative inside one process.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

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
    now_ms,
    statuses,
)
from . import sqlite_search as search
from .admin_queries import AdminQueries
from .file_refs import FileRefs
from .pages import log_window, missing_from_page
from .sqlite_append import Chore, commit_batch
from .sqlite_directory import SQLiteDirectory
from .sqlite_schema import migrate

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Appends that may wait for the writer; a full queue makes senders wait (back-pressure).
APPEND_QUEUE_SIZE = 4096


class _Pending:
    __slots__ = ("callback", "request")

    def __init__(self, request: AppendRequest | Chore, callback: Callable[[Any], None]) -> None:
        self.request = request
        self.callback = callback


class SQLiteStore(SQLiteDirectory, AdminQueries, FileRefs):
    """The embedded default store. Start with `await nursery.start(store.run)`."""

    _mark, _true = "?", "1"
    _room_gone = (search.FORGET_ROOM,)

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        group_commit_max: int = 512,
        on_commit: CommitListener | None = None,
    ) -> None:
        self.path = path
        self.synchronous = synchronous.upper()
        self.group_commit_max = group_commit_max
        self.on_commit: CommitListener = on_commit or (lambda batch: None)
        self.observe_commit: CommitObserver = ignore_commit
        self.epoch = ""
        self.shared_secret = ""  # one process per file: the secret lives in the data dir
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(1)
        self._appends_in, self._appends_out = trio.open_memory_channel[_Pending](APPEND_QUEUE_SIZE)
        self._last_seq: dict[int, int] = {}
        self._closing = False
        #: "ok"; "failed" while the last group commit failed; "damaged" (for good) once a
        #: read found the database corrupt.
        self.health = "ok"
        self.commits = 0
        self.committed_messages = 0

    # ---- lifecycle ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the database, then run the group-commit writer until `close()` drains it."""
        await trio.to_thread.run_sync(self._open)
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
            # Close only when no query is running: sqlite3 does not guard a connection
            # closed under a query on another thread (a segfault, seen in tests).
            with trio.CancelScope(shield=True):
                async with self._write_limiter, self._read_limiter:
                    await trio.to_thread.run_sync(self._close_connections)

    def close(self) -> None:
        """Stop taking appends; the writer commits what is queued, then `run` returns."""
        self._closing = True
        self._appends_in.close()

    def statistics(self) -> StoreStatistics:
        return StoreStatistics(self.commits, self.committed_messages)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = _connect(self.path)
        writer.execute(f"PRAGMA synchronous={self.synchronous}")
        try:
            migrate(writer)
        except BaseException:
            writer.close()
            raise
        with writer:
            row = writer.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
            if row is None:
                self.epoch = secrets.token_hex(8)
                writer.execute("INSERT INTO meta VALUES ('epoch', ?)", (self.epoch,))
                writer.execute(
                    "INSERT OR IGNORE INTO rooms (name, created_ms) VALUES ('general', ?)",
                    (now_ms(),),
                )
            else:
                self.epoch = row[0]
        # Every room's head, so published_head() is known for all of them from the start
        # (no commit can be in flight yet); new rooms are added as they are made.
        self._last_seq.update(writer.execute("SELECT id, last_seq FROM rooms").fetchall())
        self._writer = writer
        self._reader = _connect(self.path)
        self._reader.execute("PRAGMA query_only=ON")

    def _close_connections(self) -> None:
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = None

    # ---- appends (group commit) --------------------------------------------------------

    async def submit(self, request: AppendRequest, done: AppendCallback) -> None:
        await self._queue(_Pending(request, done))

    async def _queue(self, pending: _Pending) -> None:
        if self._closing:
            raise Unavailable("the server is shutting down")
        try:
            await self._appends_in.send(pending)
        except trio.ClosedResourceError:
            raise Unavailable("the server is shutting down") from None

    async def _committed(self, request: AppendRequest | Chore) -> Any:
        """Queue `request` and wait for its commit: its result, or raise its error."""
        finished = trio.Event()
        outcome: list[Any] = []

        def done(result: Any) -> None:
            outcome.append(result)
            finished.set()

        await self._queue(_Pending(request, done))
        await finished.wait()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    async def append(self, request: AppendRequest) -> Ack:
        ack: Ack = await self._committed(request)
        return ack

    async def add_member(self, room: Room, user: User) -> None:
        await self._committed(
            Chore(
                "INSERT OR IGNORE INTO members (room_id, user_id) VALUES (?, ?)",
                (room.id, user.id),
            )
        )

    async def set_read(self, room: Room, user: User, seq: int) -> None:
        await self._committed(
            Chore(
                "UPDATE members SET last_read = MAX(last_read, MIN(?, "
                "(SELECT last_seq FROM rooms WHERE id = ?))) WHERE room_id = ? AND user_id = ?",
                (seq, room.id, room.id, user.id),
            )
        )

    async def _commit(self, batch: list[_Pending]) -> None:
        requests = [p.request for p in batch]
        started = trio.current_time()
        try:
            with trio.CancelScope(shield=True):  # a half-finished commit must still report
                results, fresh, seqs = await trio.to_thread.run_sync(
                    commit_batch,
                    self._conn(self._writer),
                    requests,
                    self._last_seq,
                    limiter=self._write_limiter,
                )
        except sqlite3.Error as exc:
            log.exception("group commit of %d appends failed", len(batch))
            if self.health == "ok":
                self.health = "failed"
            results = [StorageError(f"storage failed: {exc.__class__.__name__}")] * len(batch)
            fresh, seqs = [], {}
        # Updated here, in the same step as the publish below (no await between), so the
        # cache is exactly what subscribers have been sent: published_head() relies on it.
        self._last_seq.update(seqs)
        if fresh and self.health == "failed":
            self.health = "ok"
        self.commits += 1
        self.committed_messages += len(fresh)
        self.observe_commit(trio.current_time() - started, len(batch))
        for pending, result in zip(batch, results, strict=True):
            pending.callback(result)
        if fresh:
            self.on_commit(fresh)

    # ---- plumbing ----------------------------------------------------------------------

    @staticmethod
    def _conn(conn: sqlite3.Connection | None) -> sqlite3.Connection:
        if conn is None:
            raise Unavailable("the store is not open")
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn(self._reader)
        try:
            return await trio.to_thread.run_sync(fn, conn, limiter=self._read_limiter)
        except sqlite3.OperationalError as exc:  # busy, I/O: may pass
            log.exception("store read failed")
            raise StorageError(f"storage failed: {exc.__class__.__name__}") from exc
        except sqlite3.DatabaseError as exc:  # malformed: will not pass
            log.exception("store read found the database damaged")
            self.health = "damaged"
            raise StorageError(f"storage failed: {exc.__class__.__name__}") from exc

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn(self._writer)

        def in_transaction(c: sqlite3.Connection) -> T:
            c.execute("BEGIN IMMEDIATE")
            try:
                result = fn(c)
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
            return result

        try:
            return await trio.to_thread.run_sync(in_transaction, conn, limiter=self._write_limiter)
        except sqlite3.IntegrityError as exc:
            raise Conflict("already exists") from exc
        except sqlite3.Error as exc:
            log.exception("store write failed")
            raise StorageError(f"storage failed: {exc.__class__.__name__}") from exc

    # ---- reads -------------------------------------------------------------------------

    async def history(
        self, room: Room, *, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        sql, params = log_queries.history(room.id, before, after, limit, "?")

        def query(c: sqlite3.Connection) -> list[Message]:
            c.execute("BEGIN")  # the head and the page from one snapshot
            try:
                head = c.execute("SELECT last_seq FROM rooms WHERE id = ?", (room.id,)).fetchone()
                found = log_queries.messages(c.execute(sql, params).fetchall())
                window = log_window(
                    [m.seq for m in found],
                    head=head[0] if head else 0,
                    before=before,
                    after=after,
                    limit=limit,
                )
                rows = c.execute(
                    "SELECT COUNT(*) FROM events WHERE room_id = ? AND seq BETWEEN ? AND ?",
                    (room.id, window.start, window.stop - 1),
                ).fetchone()[0]
                wrong = missing_from_page(window, rows)
                if wrong is not None:
                    raise sqlite3.DatabaseError(f"history of room {room.id} is short: {wrong}")
                return log_queries.fold(c.execute, "?", found)
            finally:
                c.execute("COMMIT")

        return await self._read(query)

    async def replay(self, room: Room, *, after: int, limit: int) -> list[Event]:
        sql, params = log_queries.replay(room.id, after, limit, "?")
        return await self._read(lambda c: log_queries.events(c.execute(sql, params).fetchall()))

    async def create_room(
        self,
        name: str,
        *,
        private: bool,
        owner: User | None,
        dm: bool = False,
        max_owned: int | None = None,
    ) -> Room:
        room = await super().create_room(
            name, private=private, owner=owner, dm=dm, max_owned=max_owned
        )
        self._last_seq.setdefault(room.id, 0)
        return room

    async def open_dm(self, a: User, b: User) -> Room:
        room = await super().open_dm(a, b)
        self._last_seq.setdefault(room.id, room.head_seq)
        return room

    def published_head(self, room: Room) -> int | None:
        """The room's highest seq this process has committed and published (None: unknown)."""
        return self._last_seq.get(room.id)

    async def set_status(self, user: User, state: str, text: str) -> None:
        await self._committed(Chore(*statuses.set_status("?", user, state, text)))

    async def set_last_seen(self, user: User, ts: int) -> None:
        await self._committed(Chore(*statuses.set_last_seen("?", user, ts)))

    async def status(self, user: User) -> UserStatus:
        sql, params = statuses.status("?", user)
        return await self._read(
            lambda c: statuses.from_row(user, c.execute(sql, params).fetchone())
        )

    async def search(
        self, user: User, q: str, *, room: Room | None, before: str | None, limit: int
    ) -> list[SearchHit]:
        room_id = None if room is None else room.id
        return await self._read(
            lambda c: search.search(c, user.id, q, room_id=room_id, before=before, limit=limit)
        )

    async def head_seq(self, room: Room) -> int:
        cached = self._last_seq.get(room.id)
        if cached is not None:
            return cached

        def query(c: sqlite3.Connection) -> int:
            row = c.execute("SELECT last_seq FROM rooms WHERE id = ?", (room.id,)).fetchone()
            if row is None:
                raise NotFound("no such room")
            return int(row[0])

        return await self._read(query)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    # A deleted message's text is overwritten in place, and this zeroes the bytes it
    # leaves free, so the text is not left in the file (docs/SECURITY.md).
    conn.execute("PRAGMA secure_delete=ON")
    return conn
