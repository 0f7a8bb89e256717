"""SQLite store: WAL, one writer connection that group-commits appends, one reader connection.

Blocking sqlite3 calls run in worker threads, each connection behind its own
`CapacityLimiter(1)`, so the writer's fsync never stalls a history read. Appends go
through one bounded channel to a single writer task, which commits everything pending
in one transaction, then (in seq order) completes each append and hands the batch to
the commit listener for fan-out. Because that one task assigns every seq, the seq
cache it keeps per room is authoritative inside one process.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import trio

from ..errors import Conflict, NotFound, StorageError, Unavailable
from . import (
    Ack,
    AppendCallback,
    AppendRequest,
    CommitListener,
    Message,
    Room,
    RoomView,
    Session,
    User,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Appends that may wait for the writer; a full queue makes senders wait (back-pressure).
APPEND_QUEUE_SIZE = 4096

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    expires_ms INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rooms (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    private INTEGER NOT NULL DEFAULT 0,
    dm INTEGER NOT NULL DEFAULT 0,
    owner_id INTEGER REFERENCES users(id),
    last_seq INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    last_read INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    seq INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    text TEXT NOT NULL,
    client_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq),
    UNIQUE (user_id, client_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dms (
    user_a INTEGER NOT NULL REFERENCES users(id),
    user_b INTEGER NOT NULL REFERENCES users(id),
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    PRIMARY KEY (user_a, user_b)
) WITHOUT ROWID;
"""

_MESSAGE_COLUMNS = "r.name, m.id, m.seq, u.name, m.text, m.ts, m.client_id"
_MESSAGE_FROM = "messages m JOIN rooms r ON r.id = m.room_id JOIN users u ON u.id = m.user_id"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A message or session id: time-ordered prefix, random suffix (sortable, unguessable)."""
    return f"{now_ms():012x}{secrets.token_hex(6)}"


class _Pending:
    __slots__ = ("callback", "request")

    def __init__(self, request: AppendRequest, callback: AppendCallback) -> None:
        self.request = request
        self.callback = callback


class SQLiteStore:
    """The embedded default store. Start with `await nursery.start(store.run)`."""

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
        self.epoch = ""
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(1)
        self._appends_in, self._appends_out = trio.open_memory_channel[_Pending](APPEND_QUEUE_SIZE)
        self._last_seq: dict[int, int] = {}
        self._closing = False
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
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._close_connections)

    def close(self) -> None:
        """Stop taking appends; the writer commits what is queued, then `run` returns."""
        self._closing = True
        self._appends_in.close()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = _connect(self.path)
        writer.execute(f"PRAGMA synchronous={self.synchronous}")
        writer.executescript(SCHEMA)
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
        if self._closing:
            raise Unavailable("the server is shutting down")
        try:
            await self._appends_in.send(_Pending(request, done))
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

    async def _commit(self, batch: list[_Pending]) -> None:
        requests = [p.request for p in batch]
        try:
            with trio.CancelScope(shield=True):  # a half-finished commit must still report
                results, fresh = await trio.to_thread.run_sync(
                    self._commit_sync, requests, limiter=self._write_limiter
                )
        except sqlite3.Error as exc:
            log.exception("group commit of %d appends failed", len(batch))
            results = [StorageError(f"storage failed: {exc.__class__.__name__}")] * len(batch)
            fresh = []
        self.commits += 1
        self.committed_messages += len(fresh)
        for pending, result in zip(batch, results, strict=True):
            pending.callback(result)
        if fresh:
            self.on_commit(fresh)

    def _commit_sync(
        self, requests: list[AppendRequest]
    ) -> tuple[list[Ack | BaseException], list[Message]]:
        conn = self._conn(self._writer)
        seqs: dict[int, int] = {}
        results: list[Ack | BaseException] = []
        fresh: list[Message] = []
        ts = now_ms()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for req in requests:
                room, user = req.room, req.user
                row = conn.execute(
                    "SELECT m.room_id, r.name, m.id, m.seq, m.ts FROM messages m "
                    "JOIN rooms r ON r.id = m.room_id WHERE m.user_id = ? AND m.client_id = ?",
                    (user.id, req.client_id),
                ).fetchone()
                if row is not None:
                    if row[0] != room.id:
                        results.append(
                            Conflict(
                                "client_id already used for another room",
                                code="duplicate_client_id",
                            )
                        )
                    else:
                        results.append(Ack(row[1], req.client_id, row[2], row[3], row[4]))
                    continue
                seq = seqs.get(room.id)
                if seq is None:
                    seq = self._last_seq.get(room.id)
                if seq is None:
                    found = conn.execute(
                        "SELECT last_seq FROM rooms WHERE id = ?", (room.id,)
                    ).fetchone()
                    if found is None:
                        results.append(NotFound("no such room"))
                        continue
                    seq = found[0]
                seq += 1
                seqs[room.id] = seq
                msg_id = new_id()
                conn.execute(
                    "INSERT INTO messages (room_id, seq, id, user_id, text, client_id, ts) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (room.id, seq, msg_id, user.id, req.text, req.client_id, ts),
                )
                results.append(Ack(room.name, req.client_id, msg_id, seq, ts))
                fresh.append(
                    Message(room.name, msg_id, seq, user.name, req.text, ts, req.client_id)
                )
            conn.executemany(
                "UPDATE rooms SET last_seq = ? WHERE id = ?",
                [(seq, room_id) for room_id, seq in seqs.items()],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._last_seq.update(seqs)
        return results, fresh

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
        except sqlite3.Error as exc:
            log.exception("store read failed")
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
        def query(c: sqlite3.Connection) -> list[Message]:
            base = f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.room_id = ?"
            if after is not None:
                rows = c.execute(
                    base + " AND m.seq > ? ORDER BY m.seq LIMIT ?", (room.id, after, limit)
                ).fetchall()
            else:
                upper = before if before is not None else 2**62
                rows = c.execute(
                    base + " AND m.seq < ? ORDER BY m.seq DESC LIMIT ?", (room.id, upper, limit)
                ).fetchall()
                rows.reverse()
            return [Message(*row) for row in rows]

        return await self._read(query)

    async def head_seq(self, room: Room) -> int:
        def query(c: sqlite3.Connection) -> int:
            row = c.execute("SELECT last_seq FROM rooms WHERE id = ?", (room.id,)).fetchone()
            if row is None:
                raise NotFound("no such room")
            return int(row[0])

        return await self._read(query)

    async def user_credentials(self, name: str) -> tuple[User, str] | None:
        def query(c: sqlite3.Connection) -> tuple[User, str] | None:
            row = c.execute(
                "SELECT id, name, password_hash FROM users WHERE name = ?", (name,)
            ).fetchone()
            return None if row is None else (User(row[0], row[1]), row[2])

        return await self._read(query)

    async def user_by_name(self, name: str) -> User | None:
        found = await self.user_credentials(name)
        return None if found is None else found[0]

    async def user_by_id(self, user_id: int) -> User | None:
        def query(c: sqlite3.Connection) -> User | None:
            row = c.execute("SELECT id, name FROM users WHERE id = ?", (user_id,)).fetchone()
            return None if row is None else User(*row)

        return await self._read(query)

    async def session(self, session_id: str) -> Session | None:
        def query(c: sqlite3.Connection) -> Session | None:
            row = c.execute(
                "SELECT id, user_id, expires_ms FROM sessions WHERE id = ? AND revoked = 0",
                (session_id,),
            ).fetchone()
            return None if row is None else Session(*row)

        return await self._read(query)

    async def room(self, name: str) -> Room | None:
        def query(c: sqlite3.Connection) -> Room | None:
            row = c.execute(
                "SELECT id, name, private, dm, owner_id, last_seq FROM rooms WHERE name = ?",
                (name,),
            ).fetchone()
            return None if row is None else _room(row)

        return await self._read(query)

    async def rooms_for(self, user: User) -> list[RoomView]:
        def query(c: sqlite3.Connection) -> list[RoomView]:
            rows = c.execute(
                "SELECT r.name, r.private, r.dm, m.user_id IS NOT NULL, r.last_seq, "
                "COALESCE(m.last_read, 0) FROM rooms r "
                "LEFT JOIN members m ON m.room_id = r.id AND m.user_id = ? "
                "WHERE r.private = 0 OR m.user_id IS NOT NULL ORDER BY r.name",
                (user.id,),
            ).fetchall()
            return [
                RoomView(
                    name,
                    bool(private),
                    bool(dm),
                    bool(member),
                    head,
                    read,
                    max(0, head - read) if member else 0,
                )
                for name, private, dm, member, head, read in rows
            ]

        return await self._read(query)

    async def room_count(self) -> int:
        return await self._read(
            lambda c: int(c.execute("SELECT COUNT(*) FROM rooms").fetchone()[0])
        )

    async def is_member(self, room: Room, user: User) -> bool:
        def query(c: sqlite3.Connection) -> bool:
            row = c.execute(
                "SELECT 1 FROM members WHERE room_id = ? AND user_id = ?", (room.id, user.id)
            ).fetchone()
            return row is not None

        return await self._read(query)

    async def members(self, room: Room) -> list[str]:
        def query(c: sqlite3.Connection) -> list[str]:
            rows = c.execute(
                "SELECT u.name FROM members m JOIN users u ON u.id = m.user_id "
                "WHERE m.room_id = ? ORDER BY u.name",
                (room.id,),
            ).fetchall()
            return [row[0] for row in rows]

        return await self._read(query)

    # ---- writes ------------------------------------------------------------------------

    async def create_user(self, name: str, password_hash: str) -> User:
        def insert(c: sqlite3.Connection) -> User:
            cur = c.execute(
                "INSERT INTO users (name, password_hash, created_ms) VALUES (?, ?, ?)",
                (name, password_hash, now_ms()),
            )
            return User(_rowid(cur), name)

        try:
            return await self._write(insert)
        except Conflict:
            raise Conflict("that name is taken", code="name_taken") from None

    async def create_session(self, user_id: int, expires_at_ms: int) -> Session:
        session = Session(secrets.token_urlsafe(16), user_id, expires_at_ms)

        def insert(c: sqlite3.Connection) -> Session:
            c.execute("DELETE FROM sessions WHERE expires_ms < ?", (now_ms(),))
            c.execute(
                "INSERT INTO sessions (id, user_id, expires_ms) VALUES (?, ?, ?)",
                (session.id, user_id, expires_at_ms),
            )
            return session

        return await self._write(insert)

    async def extend_session(self, session_id: str, expires_at_ms: int) -> Session:
        def update(c: sqlite3.Connection) -> Session:
            row = c.execute(
                "UPDATE sessions SET expires_ms = ? WHERE id = ? AND revoked = 0 "
                "RETURNING id, user_id, expires_ms",
                (expires_at_ms, session_id),
            ).fetchone()
            if row is None:
                raise NotFound("no such session")
            return Session(*row)

        return await self._write(update)

    async def revoke_session(self, session_id: str) -> None:
        await self._write(
            lambda c: c.execute("UPDATE sessions SET revoked = 1 WHERE id = ?", (session_id,))
        )

    async def create_room(
        self, name: str, *, private: bool, owner: User | None, dm: bool = False
    ) -> Room:
        def insert(c: sqlite3.Connection) -> Room:
            cur = c.execute(
                "INSERT INTO rooms (name, private, dm, owner_id, created_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, int(private), int(dm), owner.id if owner else None, now_ms()),
            )
            room_id = _rowid(cur)
            if owner is not None:
                c.execute(
                    "INSERT INTO members (room_id, user_id) VALUES (?, ?)", (room_id, owner.id)
                )
            return Room(room_id, name, private, dm, owner.id if owner else None, 0)

        try:
            return await self._write(insert)
        except Conflict:
            raise Conflict("a room with that name exists", code="room_exists") from None

    async def add_member(self, room: Room, user: User) -> None:
        await self._write(
            lambda c: c.execute(
                "INSERT OR IGNORE INTO members (room_id, user_id) VALUES (?, ?)",
                (room.id, user.id),
            )
        )

    async def set_read(self, room: Room, user: User, seq: int) -> None:
        await self._write(
            lambda c: c.execute(
                "UPDATE members SET last_read = MAX(last_read, MIN(?, "
                "(SELECT last_seq FROM rooms WHERE id = ?))) WHERE room_id = ? AND user_id = ?",
                (seq, room.id, room.id, user.id),
            )
        )

    async def open_dm(self, a: User, b: User) -> Room:
        low, high = sorted((a, b), key=lambda u: u.id)

        def find_or_create(c: sqlite3.Connection) -> Room:
            row = c.execute(
                "SELECT r.id, r.name, r.private, r.dm, r.owner_id, r.last_seq FROM dms d "
                "JOIN rooms r ON r.id = d.room_id WHERE d.user_a = ? AND d.user_b = ?",
                (low.id, high.id),
            ).fetchone()
            if row is not None:
                return _room(row)
            name = f"dm-{low.id}-{high.id}"
            cur = c.execute(
                "INSERT INTO rooms (name, private, dm, created_ms) VALUES (?, 1, 1, ?)",
                (name, now_ms()),
            )
            room_id = _rowid(cur)
            c.executemany(
                "INSERT INTO members (room_id, user_id) VALUES (?, ?)",
                [(room_id, low.id), (room_id, high.id)],
            )
            c.execute("INSERT INTO dms VALUES (?, ?, ?)", (low.id, high.id, room_id))
            return Room(room_id, name, True, True, None, 0)

        return await self._write(find_or_create)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _rowid(cur: sqlite3.Cursor) -> int:
    if cur.lastrowid is None:
        raise StorageError("insert returned no row id")
    return cur.lastrowid


def _room(row: Sequence[Any]) -> Room:
    return Room(row[0], row[1], bool(row[2]), bool(row[3]), row[4], row[5])
