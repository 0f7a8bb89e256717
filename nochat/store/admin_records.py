"""The records of accounts and moderation as the Store returns them (admin_queries.py
reads and writes them on both backends)."""

from __future__ import annotations

from typing import Literal

import msgspec

#: Every account has one role; only an admin may call /api/admin/….
Role = Literal["admin", "member"]
ROLES: tuple[Role, ...] = ("admin", "member")
#: The account columns an admin action sets (ms since the epoch, or None to clear).
AccountFlag = Literal["disabled_ms", "banned_ms", "muted_until"]


class Account(msgspec.Struct, frozen=True):
    """An account as admins see it. `disabled_ms`/`banned_ms`: when that happened (None:
    not); `muted_until`: ms (None, or past: not muted); `sessions`: live ones."""

    id: int
    name: str
    role: Role
    created: int
    disabled_ms: int | None
    banned_ms: int | None
    muted_until: int | None
    last_seen: int | None
    sessions: int


class SessionInfo(msgspec.Struct, frozen=True):
    """A live session: `id` is the session id itself (callers shorten it for display)."""

    id: str
    created: int
    last_used: int
    address: str


class AdminRoom(msgspec.Struct, frozen=True):
    name: str
    private: bool
    dm: bool
    archived: bool
    owner: str | None
    members: int
    created: int


class AuditEntry(msgspec.Struct, frozen=True):
    """One admin action. `detail` is a JSON object's text (never message text)."""

    id: int
    ts: int
    actor: str
    action: str
    target: str
    detail: str
