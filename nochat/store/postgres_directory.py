"""PostgreSQL store, part two: accounts, sessions, rooms, members and DMs (the directory).

`PostgresStore` (postgres.py) mixes this in and supplies `_read`/`_write`, which run a
function on a pooled connection in a worker thread (`_write` inside a transaction).
Every statement is safe with other nodes writing the same database at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg

from ..errors import Conflict, Forbidden, NotFound, StorageError
from ..text import name_skeleton
from . import Room, RoomView, Session, User, now_ms

T = TypeVar("T")
Conn = psycopg.Connection[Any]

_ROOM_COLUMNS = "r.id, r.name, r.private, r.dm, r.owner_id, r.head_seq, r.archived_ms"


class PostgresDirectory:
    async def _read(self, fn: Callable[[Conn], T]) -> T:
        raise NotImplementedError

    async def _write(self, fn: Callable[[Conn], T]) -> T:
        raise NotImplementedError

    async def user_credentials(self, name: str) -> tuple[User, str] | None:
        def query(c: Conn) -> tuple[User, str] | None:
            row = c.execute(
                "SELECT id, name, password_hash FROM users WHERE lower(name) = lower(%s)",
                (name,),
            ).fetchone()
            return None if row is None else (User(row[0], row[1]), row[2])

        return await self._read(query)

    async def user_by_name(self, name: str) -> User | None:
        found = await self.user_credentials(name)
        return None if found is None else found[0]

    async def user_by_id(self, user_id: int) -> User | None:
        def query(c: Conn) -> User | None:
            row = c.execute("SELECT id, name FROM users WHERE id = %s", (user_id,)).fetchone()
            return None if row is None else User(row[0], row[1])

        return await self._read(query)

    async def session(self, session_id: str) -> Session | None:
        def query(c: Conn) -> Session | None:
            row = c.execute(
                "SELECT id, user_id, expires_ms FROM sessions WHERE id = %s AND NOT revoked",
                (session_id,),
            ).fetchone()
            return None if row is None else Session(row[0], row[1], row[2])

        return await self._read(query)

    async def room(self, name: str) -> Room | None:
        def query(c: Conn) -> Room | None:
            row = c.execute(
                f"SELECT {_ROOM_COLUMNS} FROM rooms r WHERE r.name = %s", (name,)
            ).fetchone()
            return None if row is None else _room(row)

        return await self._read(query)

    async def rooms_for(
        self, user: User, *, after: str | None, limit: int
    ) -> tuple[list[RoomView], str | None]:
        def query(c: Conn) -> tuple[list[RoomView], str | None]:
            views: list[RoomView] = []
            if after is None:
                rows = c.execute(
                    # Unread counts messages only: edits and reactions take seqs too.
                    "SELECT r.name, r.private, r.dm, r.head_seq, m.last_read, "
                    "(SELECT COUNT(*) FROM events e WHERE e.room_id = r.id "
                    "AND e.seq > m.last_read AND e.kind = 'message'), "
                    "(SELECT COUNT(*) FROM mentions x WHERE x.user_id = m.user_id "
                    "AND x.room_id = r.id AND x.seq > m.last_read) FROM rooms r "
                    "JOIN members m ON m.room_id = r.id AND m.user_id = %s ORDER BY r.name",
                    (user.id,),
                ).fetchall()
                views = [
                    RoomView(name, private, dm, True, head, read, int(unread), int(mentioned))
                    for name, private, dm, head, read, unread, mentioned in rows
                ]
            public = c.execute(
                "SELECT r.name, r.head_seq FROM rooms r WHERE NOT r.private AND r.name > %s "
                "AND NOT EXISTS (SELECT 1 FROM members m WHERE m.room_id = r.id "
                "AND m.user_id = %s) ORDER BY r.name LIMIT %s",
                (after or "", user.id, limit + 1),
            ).fetchall()
            page = public[:limit]
            views.extend(RoomView(name, False, False, False, head, 0, 0) for name, head in page)
            return views, (page[-1][0] if len(public) > limit else None)

        return await self._read(query)

    async def room_count(self) -> int:
        def query(c: Conn) -> int:
            row = c.execute("SELECT COUNT(*) FROM rooms").fetchone()
            return int(row[0]) if row else 0

        return await self._read(query)

    async def is_member(self, room: Room, user: User) -> bool:
        def query(c: Conn) -> bool:
            row = c.execute(
                "SELECT 1 FROM members WHERE room_id = %s AND user_id = %s", (room.id, user.id)
            ).fetchone()
            return row is not None

        return await self._read(query)

    async def members(self, room: Room) -> list[str]:
        def query(c: Conn) -> list[str]:
            rows = c.execute(
                "SELECT u.name FROM members m JOIN users u ON u.id = m.user_id "
                "WHERE m.room_id = %s ORDER BY u.name",
                (room.id,),
            ).fetchall()
            return [row[0] for row in rows]

        return await self._read(query)

    # ---- writes ------------------------------------------------------------------------

    async def create_user(self, name: str, password_hash: str) -> User:
        def insert(c: Conn) -> User:
            row = c.execute(
                "INSERT INTO users (name, password_hash, created_ms, skeleton) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (name, password_hash, now_ms(), name_skeleton(name)),
            ).fetchone()
            return User(_id(row), name)

        try:
            return await self._write(insert)
        except Conflict:  # the name, or one that looks like it (the skeleton's index)
            raise Conflict("that name is taken", code="name_taken") from None

    async def create_session(self, user_id: int, expires_at_ms: int, address: str = "") -> Session:
        session = Session(secrets.token_urlsafe(16), user_id, expires_at_ms)

        def insert(c: Conn) -> Session:
            now = now_ms()
            c.execute("DELETE FROM sessions WHERE expires_ms < %s", (now,))
            c.execute(
                "INSERT INTO sessions (id, user_id, expires_ms, created_ms, last_used_ms, "
                "address) VALUES (%s, %s, %s, %s, %s, %s)",
                (session.id, user_id, expires_at_ms, now, now, address),
            )
            return session

        return await self._write(insert)

    async def extend_session(self, session_id: str, expires_at_ms: int) -> Session:
        def update(c: Conn) -> Session:
            row = c.execute(
                "UPDATE sessions SET expires_ms = %s, last_used_ms = %s WHERE id = %s "
                "AND NOT revoked RETURNING id, user_id, expires_ms",
                (expires_at_ms, now_ms(), session_id),
            ).fetchone()
            if row is None:
                raise NotFound("no such session")
            return Session(row[0], row[1], row[2])

        return await self._write(update)

    async def revoke_session(self, session_id: str) -> None:
        def update(c: Conn) -> None:
            c.execute("UPDATE sessions SET revoked = true WHERE id = %s", (session_id,))

        await self._write(update)

    async def add_member(self, room: Room, user: User) -> None:
        def insert(c: Conn) -> None:
            c.execute(
                "INSERT INTO members (room_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (room.id, user.id),
            )

        await self._write(insert)

    async def set_read(self, room: Room, user: User, seq: int) -> None:
        def update(c: Conn) -> None:
            c.execute(
                "UPDATE members SET last_read = GREATEST(last_read, LEAST(%s, "
                "(SELECT head_seq FROM rooms WHERE id = %s))) "
                "WHERE room_id = %s AND user_id = %s",
                (seq, room.id, room.id, user.id),
            )

        await self._write(update)

    async def create_room(
        self,
        name: str,
        *,
        private: bool,
        owner: User | None,
        dm: bool = False,
        max_owned: int | None = None,
    ) -> Room:
        owner_id = owner.id if owner else None

        def insert(c: Conn) -> Room:
            if owner is not None and max_owned is not None:
                # The owner's row lock: two nodes creating rooms for one owner take turns,
                # so the count cannot be raced past the cap.
                c.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (owner.id,))
                row = c.execute(
                    "SELECT COUNT(*) FROM rooms WHERE owner_id = %s", (owner.id,)
                ).fetchone()
                owned = int(row[0]) if row else 0
                if owned >= max_owned:
                    raise Forbidden(f"you own {owned} rooms, the most allowed", code="room_limit")
            row = c.execute(
                "INSERT INTO rooms (name, private, dm, owner_id, created_ms) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (name, private, dm, owner_id, now_ms()),
            ).fetchone()
            room_id = _id(row)
            if owner is not None:
                c.execute(
                    "INSERT INTO members (room_id, user_id) VALUES (%s, %s)", (room_id, owner.id)
                )
            return Room(room_id, name, private, dm, owner_id, 0)

        try:
            return await self._write(insert)
        except Conflict:
            # The same answer whoever's room it is, public or private (docs/SECURITY.md).
            raise Conflict("that room name is taken", code="room_exists") from None

    async def open_dm(self, a: User, b: User) -> Room:
        low, high = sorted((a, b), key=lambda u: u.id)
        name = f"dm-{low.id}-{high.id}"

        def find_or_create(c: Conn) -> Room:
            # Two nodes opening the same DM at once: the second's inserts do nothing (the
            # name and the pair are unique) and it reads the first's room.
            row = c.execute(
                "INSERT INTO rooms (name, private, dm, created_ms) VALUES (%s, true, true, %s) "
                "ON CONFLICT (name) DO NOTHING RETURNING id",
                (name, now_ms()),
            ).fetchone()
            if row is not None:
                c.execute(
                    "INSERT INTO members (room_id, user_id) VALUES (%s, %s), (%s, %s)",
                    (row[0], low.id, row[0], high.id),
                )
                c.execute("INSERT INTO dms VALUES (%s, %s, %s)", (low.id, high.id, row[0]))
            found = c.execute(
                f"SELECT {_ROOM_COLUMNS} FROM dms d JOIN rooms r ON r.id = d.room_id "
                "WHERE d.user_a = %s AND d.user_b = %s",
                (low.id, high.id),
            ).fetchone()
            if found is None:
                raise StorageError("the direct conversation was not stored")
            return _room(found)

        return await self._write(find_or_create)


def _id(row: Sequence[Any] | None) -> int:
    if row is None:
        raise StorageError("insert returned no id")
    return int(row[0])


def _room(row: Sequence[Any]) -> Room:
    return Room(row[0], row[1], bool(row[2]), bool(row[3]), row[4], row[5], row[6] is not None)
