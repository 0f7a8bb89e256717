"""SQLite store, part two: accounts, sessions, rooms, members and DMs (the directory).

`SQLiteStore` (sqlite.py) mixes this in and supplies `_read`/`_write`, which run a
function on the reader or writer connection in a worker thread.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import Conflict, Forbidden, NotFound, StorageError
from ..text import name_skeleton
from . import Room, RoomView, Session, User, now_ms

T = TypeVar("T")


class SQLiteDirectory:
    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

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
                "SELECT id, name, private, dm, owner_id, last_seq, archived_ms FROM rooms "
                "WHERE name = ?",
                (name,),
            ).fetchone()
            return None if row is None else _room(row)

        return await self._read(query)

    async def rooms_for(
        self, user: User, *, after: str | None, limit: int
    ) -> tuple[list[RoomView], str | None]:
        def query(c: sqlite3.Connection) -> tuple[list[RoomView], str | None]:
            views: list[RoomView] = []
            if after is None:
                rows = c.execute(
                    # Unread counts messages only: edits and reactions take seqs too.
                    "SELECT r.name, r.private, r.dm, r.last_seq, m.last_read, "
                    "(SELECT COUNT(*) FROM events e WHERE e.room_id = r.id "
                    "AND e.seq > m.last_read AND e.kind = 'message'), "
                    "(SELECT COUNT(*) FROM mentions x WHERE x.user_id = m.user_id "
                    "AND x.room_id = r.id AND x.seq > m.last_read) FROM rooms r "
                    "JOIN members m ON m.room_id = r.id AND m.user_id = ? ORDER BY r.name",
                    (user.id,),
                ).fetchall()
                views = [
                    RoomView(
                        name, bool(private), bool(dm), True, head, read, int(unread), int(mentioned)
                    )
                    for name, private, dm, head, read, unread, mentioned in rows
                ]
            # Walks the unique index on rooms.name from the cursor; members' PK skips joined.
            public = c.execute(
                "SELECT r.name, r.last_seq FROM rooms r WHERE r.private = 0 AND r.name > ? "
                "AND NOT EXISTS (SELECT 1 FROM members m WHERE m.room_id = r.id "
                "AND m.user_id = ?) ORDER BY r.name LIMIT ?",
                (after or "", user.id, limit + 1),
            ).fetchall()
            page = public[:limit]
            views.extend(RoomView(name, False, False, False, head, 0, 0) for name, head in page)
            more = len(public) > limit
            return views, (page[-1][0] if more else None)

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
                "INSERT INTO users (name, password_hash, created_ms, skeleton) VALUES (?, ?, ?, ?)",
                (name, password_hash, now_ms(), name_skeleton(name)),
            )
            return User(_rowid(cur), name)

        try:
            return await self._write(insert)
        except Conflict:  # the name, or one that looks like it (the skeleton's index)
            raise Conflict("that name is taken", code="name_taken") from None

    async def create_session(self, user_id: int, expires_at_ms: int, address: str = "") -> Session:
        session = Session(secrets.token_urlsafe(16), user_id, expires_at_ms)

        def insert(c: sqlite3.Connection) -> Session:
            now = now_ms()
            c.execute("DELETE FROM sessions WHERE expires_ms < ?", (now,))
            c.execute(
                "INSERT INTO sessions (id, user_id, expires_ms, created_ms, last_used_ms, "
                "address) VALUES (?, ?, ?, ?, ?, ?)",
                (session.id, user_id, expires_at_ms, now, now, address),
            )
            return session

        return await self._write(insert)

    async def extend_session(self, session_id: str, expires_at_ms: int) -> Session:
        def update(c: sqlite3.Connection) -> Session:
            row = c.execute(
                "UPDATE sessions SET expires_ms = ?, last_used_ms = ? WHERE id = ? "
                "AND revoked = 0 RETURNING id, user_id, expires_ms",
                (expires_at_ms, now_ms(), session_id),
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
        self,
        name: str,
        *,
        private: bool,
        owner: User | None,
        dm: bool = False,
        max_owned: int | None = None,
    ) -> Room:
        def insert(c: sqlite3.Connection) -> Room:
            if owner is not None and max_owned is not None:
                (owned,) = c.execute(
                    "SELECT COUNT(*) FROM rooms WHERE owner_id = ?", (owner.id,)
                ).fetchone()
                if owned >= max_owned:
                    raise Forbidden(f"you own {owned} rooms, the most allowed", code="room_limit")
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
            # The same answer whoever's room it is, public or private (docs/SECURITY.md).
            raise Conflict("that room name is taken", code="room_exists") from None

    async def open_dm(self, a: User, b: User) -> Room:
        low, high = sorted((a, b), key=lambda u: u.id)

        def find_or_create(c: sqlite3.Connection) -> Room:
            row = c.execute(
                "SELECT r.id, r.name, r.private, r.dm, r.owner_id, r.last_seq, r.archived_ms "
                "FROM dms d JOIN rooms r ON r.id = d.room_id WHERE d.user_a = ? AND d.user_b = ?",
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


def _rowid(cur: sqlite3.Cursor) -> int:
    if cur.lastrowid is None:
        raise StorageError("insert returned no row id")
    return cur.lastrowid


def _room(row: Sequence[Any]) -> Room:
    return Room(row[0], row[1], bool(row[2]), bool(row[3]), row[4], row[5], row[6] is not None)
