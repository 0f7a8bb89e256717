"""Accounts and moderation in the store: roles, bans, mutes, sessions by user, password
changes, account deletion, room administration, password-reset tokens and the audit log.

One mixin for both backends (`SQLiteStore`, `PostgresStore`): their SQL differs only in
the parameter mark (`_mark`), the literal for true (`_true`), and what else a deleted
room must forget (`_room_gone`: SQLite's full-text rows). The backends supply `_read`
and `_write` (a function on a connection in a worker thread; `_write` in a transaction).

Deleted accounts keep their row (their messages still point at it) under a name no one
can register (`deleted:<id>`, shown as `deleted user`: log_queries.AUTHOR), so the old
name is free. A deleted room likewise keeps its row and events (scrubbed of text) under
`~<id>`, private and memberless: nothing can find it any more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from . import now_ms
from .admin_records import Account, AccountFlag, AdminRoom, AuditEntry, Role, SessionInfo

T = TypeVar("T")

SQLITE_MIGRATION: Final = [
    "ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member'",
    "ALTER TABLE users ADD COLUMN disabled_ms INTEGER",
    "ALTER TABLE users ADD COLUMN banned_ms INTEGER",
    "ALTER TABLE users ADD COLUMN muted_until INTEGER",
    "ALTER TABLE users ADD COLUMN deleted_ms INTEGER",
    "ALTER TABLE sessions ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE sessions ADD COLUMN last_used_ms INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX sessions_user ON sessions (user_id)",
    "ALTER TABLE rooms ADD COLUMN archived_ms INTEGER",
    """CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
    """CREATE TABLE password_resets (
        user_id INTEGER PRIMARY KEY REFERENCES users(id),
        token_sha256 TEXT NOT NULL UNIQUE,
        expires_ms INTEGER NOT NULL
    )""",
]
POSTGRES_MIGRATION: Final = [
    "ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member'",
    "ALTER TABLE users ADD COLUMN disabled_ms BIGINT",
    "ALTER TABLE users ADD COLUMN banned_ms BIGINT",
    "ALTER TABLE users ADD COLUMN muted_until BIGINT",
    "ALTER TABLE users ADD COLUMN deleted_ms BIGINT",
    "ALTER TABLE sessions ADD COLUMN created_ms BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE sessions ADD COLUMN last_used_ms BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX sessions_user ON sessions (user_id)",
    "ALTER TABLE rooms ADD COLUMN archived_ms BIGINT",
    """CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
        ts BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
    """CREATE TABLE password_resets (
        user_id BIGINT PRIMARY KEY REFERENCES users(id),
        token_sha256 TEXT NOT NULL UNIQUE,
        expires_ms BIGINT NOT NULL
    )""",
]

_ACCOUNT = (
    "SELECT u.id, u.name, u.role, u.created_ms, u.disabled_ms, u.banned_ms, u.muted_until, "
    "s.last_seen, (SELECT COUNT(*) FROM sessions x WHERE x.user_id = u.id AND NOT x.revoked "
    "AND x.expires_ms > {m}) FROM users u LEFT JOIN statuses s ON s.user_id = u.id "
    "WHERE u.deleted_ms IS NULL"
)
_ADMIN_ROOM = (
    "SELECT r.name, r.private, r.dm, r.archived_ms, u.name, "
    "(SELECT COUNT(*) FROM members x WHERE x.room_id = r.id), r.created_ms "
    "FROM rooms r LEFT JOIN users u ON u.id = r.owner_id"
)
_FLAGS: frozenset[str] = frozenset({"disabled_ms", "banned_ms", "muted_until"})


def _like(q: str) -> str:
    """`q` as a LIKE pattern for "contains", its own % _ \\ taken literally."""
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _admin_room(r: Sequence[Any]) -> AdminRoom:
    return AdminRoom(r[0], bool(r[1]), bool(r[2]), r[3] is not None, r[4], int(r[5]), int(r[6]))


def _account(row: Sequence[Any]) -> Account:
    return Account(
        int(row[0]), row[1], row[2], int(row[3]), row[4], row[5], row[6], row[7], int(row[8])
    )


class AdminQueries:
    _mark: str
    _true: str
    #: Statements (room id as the one parameter) a room's deletion runs besides the shared ones.
    _room_gone: tuple[str, ...] = ()

    async def _read(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    async def _write(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    # ---- accounts ----------------------------------------------------------------------

    async def account(self, user_id: int) -> Account | None:
        m = self._mark
        sql = _ACCOUNT.format(m=m) + f" AND u.id = {m}"
        row = await self._read(lambda c: c.execute(sql, (now_ms(), user_id)).fetchone())
        return None if row is None else _account(row)

    async def account_by_name(self, name: str) -> Account | None:
        m = self._mark
        sql = _ACCOUNT.format(m=m) + f" AND lower(u.name) = lower({m})"
        row = await self._read(lambda c: c.execute(sql, (now_ms(), name)).fetchone())
        return None if row is None else _account(row)

    async def accounts(self, q: str, *, after: str | None, limit: int) -> list[Account]:
        """Accounts whose name holds `q` (any case), by name, after `after`."""
        m = self._mark
        sql = (
            _ACCOUNT.format(m=m) + f" AND lower(u.name) LIKE {m} ESCAPE '\\' "
            f"AND u.name > {m} ORDER BY u.name LIMIT {m}"
        )
        params = (now_ms(), _like(q), after or "", limit)
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        return [_account(row) for row in rows]

    async def set_role(self, name: str, role: Role) -> Account | None:
        """Make the named account `role`; None when there is no such account."""
        m = self._mark

        def update(c: Any) -> int:
            return int(
                c.execute(
                    f"UPDATE users SET role = {m} WHERE lower(name) = lower({m}) "
                    "AND deleted_ms IS NULL",
                    (role, name),
                ).rowcount
            )

        if not await self._write(update):
            return None
        return await self.account_by_name(name)

    async def set_account_flag(self, user_id: int, flag: AccountFlag, value: int | None) -> None:
        if flag not in _FLAGS:  # the column name goes into the SQL: only these three
            raise ValueError(flag)
        m = self._mark
        await self._write(
            lambda c: c.execute(f"UPDATE users SET {flag} = {m} WHERE id = {m}", (value, user_id))
        )

    async def set_password(self, user_id: int, password_hash: str) -> None:
        m = self._mark
        await self._write(
            lambda c: c.execute(
                f"UPDATE users SET password_hash = {m} WHERE id = {m}", (password_hash, user_id)
            )
        )

    async def user_sessions(self, user_id: int) -> list[SessionInfo]:
        """The user's live sessions, newest first."""
        m = self._mark
        sql = (
            "SELECT id, created_ms, last_used_ms, address FROM sessions WHERE user_id = "
            f"{m} AND NOT revoked AND expires_ms > {m} ORDER BY created_ms DESC, id"
        )
        rows = await self._read(lambda c: c.execute(sql, (user_id, now_ms())).fetchall())
        return [SessionInfo(r[0], int(r[1]), int(r[2]), r[3]) for r in rows]

    async def end_sessions(self, user_id: int, *, keep: str | None = None) -> list[str]:
        """Revoke every session of the user (but `keep`); the ids of those it ended."""
        m = self._mark

        def revoke(c: Any) -> list[str]:
            rows = c.execute(
                f"SELECT id FROM sessions WHERE user_id = {m} AND NOT revoked AND id <> {m}",
                (user_id, keep or ""),
            ).fetchall()
            ids = [row[0] for row in rows]
            c.execute(
                f"UPDATE sessions SET revoked = {self._true} WHERE user_id = {m} AND id <> {m}",
                (user_id, keep or ""),
            )
            return ids

        return await self._write(revoke)

    async def delete_account(self, user_id: int) -> list[str]:
        """Delete the account (module docstring); the ids of the sessions it ended."""
        m = self._mark

        def delete(c: Any) -> list[str]:
            rows = c.execute(
                f"SELECT id FROM sessions WHERE user_id = {m} AND NOT revoked", (user_id,)
            ).fetchall()
            for table in ("sessions", "members", "statuses", "password_resets"):
                c.execute(f"DELETE FROM {table} WHERE user_id = {m}", (user_id,))
            c.execute(
                f"UPDATE users SET name = {m}, skeleton = NULL, password_hash = '', "
                f"role = 'member', deleted_ms = {m} WHERE id = {m}",
                (f"deleted:{user_id}", now_ms(), user_id),
            )
            return [row[0] for row in rows]

        return await self._write(delete)

    # ---- password resets ---------------------------------------------------------------

    async def put_reset(self, user_id: int, token_sha256: str, expires_ms: int) -> None:
        """Store the user's reset token (its hash), replacing any earlier one."""
        m = self._mark

        def upsert(c: Any) -> None:
            c.execute(f"DELETE FROM password_resets WHERE user_id = {m}", (user_id,))
            c.execute(
                f"INSERT INTO password_resets VALUES ({m}, {m}, {m})",
                (user_id, token_sha256, expires_ms),
            )

        await self._write(upsert)

    async def take_reset(self, token_sha256: str) -> int | None:
        """Use up a reset token: the user it was for, None if unknown or expired."""
        m = self._mark

        def take(c: Any) -> Any:
            return c.execute(
                f"DELETE FROM password_resets WHERE token_sha256 = {m} "
                "RETURNING user_id, expires_ms",
                (token_sha256,),
            ).fetchone()

        row = await self._write(take)
        if row is None or int(row[1]) <= now_ms():
            return None
        return int(row[0])

    # ---- the audit log -----------------------------------------------------------------

    async def add_audit(self, actor: str, action: str, target: str, detail: str) -> None:
        m = self._mark
        await self._write(
            lambda c: c.execute(
                "INSERT INTO audit (ts, actor, action, target, detail) "
                f"VALUES ({m}, {m}, {m}, {m}, {m})",
                (now_ms(), actor, action, target, detail),
            )
        )

    async def audit_page(self, *, before: int | None, limit: int) -> list[AuditEntry]:
        """Entries newest first, with ids below `before` when given."""
        m = self._mark
        sql = (
            "SELECT id, ts, actor, action, target, detail FROM audit "
            f"WHERE id < {m} ORDER BY id DESC LIMIT {m}"
        )
        params = (before if before is not None else 2**62, limit)
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        return [AuditEntry(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    # ---- rooms -------------------------------------------------------------------------

    async def admin_rooms(self, q: str, *, after: str | None, limit: int) -> list[AdminRoom]:
        """Rooms (DMs too, not deleted ones) whose name holds `q`, by name, after `after`."""
        m = self._mark
        sql = (
            f"{_ADMIN_ROOM} WHERE r.name > {m} AND r.name LIKE {m} ESCAPE '\\' "
            f"AND substr(r.name, 1, 1) <> '~' ORDER BY r.name LIMIT {m}"
        )
        params = (after or "", _like(q), limit)
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        return [_admin_room(r) for r in rows]

    async def admin_room(self, name: str) -> AdminRoom | None:
        sql = f"{_ADMIN_ROOM} WHERE r.name = {self._mark}"
        row = await self._read(lambda c: c.execute(sql, (name,)).fetchone())
        return None if row is None else _admin_room(row)

    async def set_archived(self, room_id: int, archived: bool) -> None:
        m = self._mark
        value = now_ms() if archived else None
        await self._write(
            lambda c: c.execute(
                f"UPDATE rooms SET archived_ms = {m} WHERE id = {m}", (value, room_id)
            )
        )

    async def make_private(self, room_id: int) -> None:
        m = self._mark
        await self._write(
            lambda c: c.execute(
                f"UPDATE rooms SET private = {self._true} WHERE id = {m}", (room_id,)
            )
        )

    async def set_owner(self, room_id: int, user_id: int) -> None:
        m = self._mark
        await self._write(
            lambda c: c.execute(
                f"UPDATE rooms SET owner_id = {m} WHERE id = {m}", (user_id, room_id)
            )
        )

    async def remove_member(self, room_id: int, user_id: int) -> None:
        m = self._mark
        await self._write(
            lambda c: c.execute(
                f"DELETE FROM members WHERE room_id = {m} AND user_id = {m}", (room_id, user_id)
            )
        )

    async def delete_room(self, room_id: int) -> None:
        """Gone for everyone (module docstring): the name is free, the text removed."""
        m = self._mark

        def delete(c: Any) -> None:
            for sql in self._room_gone:
                c.execute(sql, (room_id,))
            c.execute(f"UPDATE events SET payload = '' WHERE room_id = {m}", (room_id,))
            c.execute(f"DELETE FROM members WHERE room_id = {m}", (room_id,))
            c.execute(f"DELETE FROM mentions WHERE room_id = {m}", (room_id,))
            c.execute(f"DELETE FROM dms WHERE room_id = {m}", (room_id,))
            c.execute(
                f"UPDATE rooms SET name = '~' || CAST(id AS TEXT), private = {self._true} "
                f"WHERE id = {m}",
                (room_id,),
            )

        await self._write(delete)
