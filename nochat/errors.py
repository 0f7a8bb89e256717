"""The NoChat error hierarchy, with each error's stable code, HTTP status and close code."""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any


class CloseCode(IntEnum):
    """WebSocket close codes NoChat uses (docs/PROTOCOL.md lists them for clients)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011
    RESTART = 1012
    TOKEN_EXPIRED = 4001
    NO_PONG = 4002
    BANNED = 4003
    DISCONNECTED = 4004
    SLOW_CONSUMER = 4008
    RATE_LIMITED = 4029


CLOSE_REASONS: dict[CloseCode, str] = {
    CloseCode.NORMAL: "bye",
    CloseCode.GOING_AWAY: "going away",
    CloseCode.POLICY: "policy violation",
    CloseCode.TOO_BIG: "frame too big",
    CloseCode.INTERNAL: "internal error",
    CloseCode.RESTART: "service restart",
    CloseCode.TOKEN_EXPIRED: "token expired",
    CloseCode.NO_PONG: "no pong",
    CloseCode.BANNED: "banned",
    CloseCode.DISCONNECTED: "disconnected by an admin",
    CloseCode.SLOW_CONSUMER: "slow consumer",
    CloseCode.RATE_LIMITED: "rate limited",
}


class NoChatError(Exception):
    """Base of every error NoChat raises on purpose. `code` is stable and machine-readable."""

    code = "internal"
    http_status = 500

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])

    def details(self) -> dict[str, Any]:
        """Fields an error frame or body carries beside code and message (none by default)."""
        return {}


class ConfigError(NoChatError):
    """Invalid configuration."""

    code = "config"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems))


class ProtocolError(NoChatError):
    """A frame or request body that does not follow the protocol."""

    code = "invalid_frame"
    http_status = 400


class ValidationError(ProtocolError):
    """Well-formed input whose values are not acceptable."""

    code = "invalid"


class AuthError(NoChatError):
    """Missing, invalid or expired credentials."""

    code = "unauthorized"
    http_status = 401


class Forbidden(NoChatError):
    """Authenticated, but not allowed."""

    code = "forbidden"
    http_status = 403


class Muted(Forbidden):
    """An admin has muted this account: it may read, not write, until `until_ms`."""

    code = "muted"

    def __init__(self, until_ms: int) -> None:
        super().__init__("you are muted")
        self.until_ms = until_ms

    def details(self) -> dict[str, Any]:
        return {"until": self.until_ms}


class NotFound(NoChatError):
    """No such thing (or one the caller may not know about)."""

    code = "not_found"
    http_status = 404


class Conflict(NoChatError):
    """The thing already exists or clashes with what exists."""

    code = "conflict"
    http_status = 409


class RateLimited(NoChatError):
    """Too many requests; `retry_after_s` says when to try again."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str = "", *, retry_after_s: float = 1.0) -> None:
        super().__init__(message or "rate limited")
        self.retry_after_s = retry_after_s


class Unavailable(NoChatError):
    """The server cannot take this now (shutting down, at capacity)."""

    code = "unavailable"
    http_status = 503


class StartupError(NoChatError):
    """The server cannot start: its data directory is in use or its database is damaged."""

    code = "startup"


class BackupError(NoChatError):
    """A backup or restore that cannot be made (`nochat backup`/`restore` print it)."""

    code = "backup"


class Overloaded(Unavailable):
    """Too much work of this kind waiting already; `retry_after_s` says when to try again."""

    code = "overloaded"

    def __init__(self, message: str = "", *, retry_after_s: float = 1.0) -> None:
        super().__init__(message or "overloaded")
        self.retry_after_s = retry_after_s


class UnsupportedMediaType(NoChatError):
    """The request body is not of the one media type this endpoint takes (JSON)."""

    code = "unsupported_media_type"
    http_status = 415


class StorageError(Unavailable):
    """The store failed; nothing was acknowledged.

    On the wire it is `unavailable`, like any other "retry later": a client cannot act on
    the difference, and one code is what docs/PROTOCOL.md promises and web/socket.js retries.
    """
