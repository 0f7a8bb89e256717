"""Settings: one frozen dataclass built once from NOCHAT_* variables and CLI flags."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self

from .errors import ConfigError

ENV_PREFIX = "NOCHAT_"
#: Most worker processes `nochat serve --workers` runs.
MAX_WORKERS = 64
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
_SYNC_MODES = {"OFF", "NORMAL", "FULL", "EXTRA"}
_DATABASE_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything NoChat can be told. Each field is also `NOCHAT_<FIELD>` in the environment."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("nochat-data")
    log_level: str = "INFO"
    #: "text" (readable) or "json" (one object per line, for log shippers).
    log_format: str = "text"
    #: Token signing secret; when empty one is generated once and kept in data_dir.
    secret: str = field(default="", repr=False)
    token_ttl_s: float = 24 * 3600.0
    #: Largest WebSocket frame accepted; bigger frames close the socket with 1009.
    max_frame_bytes: int = 64 * 1024
    max_text_chars: int = 4000
    #: How often the server puts an app-level ping in every outbox.
    ping_interval_s: float = 25.0
    #: No frame at all from a client for this long closes it with 4002.
    pong_timeout_s: float = 60.0
    #: Events one connection may have queued before it is evicted (4008).
    outbox_size: int = 256
    #: Characters (bytes, for ASCII) one connection may have queued or in the write,
    #: replays included; more evicts it (4008). A replay waits for room instead.
    outbox_bytes: int = 512 * 1024
    #: A replay (join since) that finds no room in the outbox for this long evicts (4008).
    outbox_stall_s: float = 10.0
    #: Replays (join with missed messages) one user may run at once; more joins wait.
    replays_per_user: int = 4
    #: Accept permessage-deflate when clients offer it (costs a zlib state per socket).
    websocket_compression: bool = False
    #: The direct wire paths (nochat/wire.py): prepared frames written straight to sockets,
    #: client frames read by NoChat's RFC 6455 reader; off = Hypercorn and wsproto.
    direct_send: bool = True
    #: Most events the write pump coalesces into one frame.
    batch_max_events: int = 256
    #: Pending TCP connections the kernel queues (a reconnect storm overflows 100).
    listen_backlog: int = 4096
    #: Kernel gives up on a peer that does not read for this long (TCP_USER_TIMEOUT).
    tcp_user_timeout_s: float = 10.0
    #: How long shutdown waits for connections to close with 1012.
    shutdown_grace_s: float = 5.0
    sqlite_synchronous: str = "FULL"
    #: postgresql://… selects the PostgreSQL store (nodes share it); "" keeps SQLite.
    database_url: str = field(default="", repr=False)
    #: Connections each node keeps to PostgreSQL (one is the group-commit writer's).
    database_pool_size: int = 10
    #: Most appends committed in one SQLite transaction.
    group_commit_max: int = 512
    history_page_max: int = 200
    #: Messages replayed per store read while a joining client catches up.
    resume_page: int = 500
    #: Comma-separated origins allowed to open cookie-authenticated sockets.
    allowed_origins: tuple[str, ...] = ()
    #: Mark the session cookie Secure (always on when served over TLS).
    cookie_secure: bool = False
    #: argon2id cost: "default" (RFC 9106 second recommendation) or "fast" (tests, benches).
    password_hashing: str = "default"
    #: Rooms with more subscribers than this get presence changes in batches (every 0.25 s).
    presence_batch_above: int = 100
    #: Sends per second one connection may make, and the burst it may save up.
    send_rate_per_s: float = 10.0
    send_burst: int = 20
    #: At most one `typing` per room per this many seconds from one connection.
    typing_interval_s: float = 2.0
    #: joins/leaves per second per connection, and burst.
    join_rate_per_s: float = 5.0
    join_burst: int = 20
    #: Any frame at all, per connection (floods of pongs, reads, garbage), and burst.
    frame_rate_per_s: float = 50.0
    frame_burst: int = 100
    #: Rate-limited frames in a row before the connection is closed with 4029.
    rate_strikes: int = 10
    #: Open sockets one user may have; more are refused with HTTP 429.
    max_connections_per_user: int = 20
    #: Open sockets in this process; more are refused with HTTP 503.
    max_connections: int = 10_000
    #: Rooms one user may own (DMs are not counted); more are refused with HTTP 403.
    max_rooms_per_user: int = 50
    #: Room creations one user may attempt per hour (taken names count too); then 429.
    room_creations_per_hour: int = 10
    #: Failed logins per (name, address) within login_window_s before 429; per name from
    #: any address; per address for any names (high: a proxy or NAT shares one address).
    login_failures: int = 5
    login_name_failures: int = 20
    login_address_failures: int = 100
    login_window_s: float = 300.0
    #: Sign-ups per client address per hour before 429.
    signup_rate_per_h: int = 20
    #: Comma-separated proxy addresses/CIDRs whose X-Forwarded-For names the client
    #: ("" = never trust the header).
    trusted_proxies: tuple[str, ...] = ()
    #: Bearer token /metrics requires ("" = /metrics answers 404).
    metrics_token: str = field(default="", repr=False)
    #: An accepted socket must send its first frame within this long (else 4002).
    first_frame_timeout_s: float = 10.0
    #: Serve the browser client from this directory ("" = the bundled web/).
    web_dir: str = ""
    #: PEM certificate chain and private key: both set serves HTTPS and wss:// only.
    certfile: str = ""
    keyfile: str = ""
    #: How long an event that arrives ahead of its room's next seq is held before the
    #: gap is read from the store.
    broker_hold_s: float = 0.2
    #: redis://… selects the Redis broker (scale-out); "" = one process, LocalBroker.
    redis_url: str = field(default="", repr=False)
    #: Events waiting to be PUBLISHed to Redis; more are dropped (other nodes backfill).
    broker_buffer: int = 10_000
    #: With Redis: a node's presence lease lasts this long unrefreshed; a node that dies
    #: has its users shown offline everywhere within presence_lease_s + presence_refresh_s.
    presence_lease_s: float = 10.0
    #: With Redis: how often each node refreshes its lease and reaps dead nodes' users.
    presence_refresh_s: float = 2.0
    #: Worker processes `nochat serve` runs on one port (more than 1: Redis and PostgreSQL).
    workers: int = 1
    #: Largest file one upload may be; more is refused with 413 as soon as it is passed.
    max_upload_bytes: int = 25 * 1024 * 1024
    #: Bytes of files one user may have stored in all (attached or not); then 413.
    upload_quota_bytes: int = 1024 * 1024 * 1024
    #: An uploaded file no message has attached is removed this long after its upload.
    upload_grace_s: float = 24 * 3600.0
    #: A send's claim on its files that the room log never stored (the send was refused
    #: and its unclaim lost) is undone this long after it was made: far above any
    #: append's time, so an append in flight is never taken for a lost one.
    upload_claim_margin_s: float = 900.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Build settings from `NOCHAT_*` variables, then `overrides` (CLI flags) on top.

        An override may be a string (a CLI flag as typed), parsed like its variable. Every
        bad value, unparsable or out of range, is collected and reported at once in one
        `ConfigError`.
        """
        env = os.environ if env is None else env
        raw: dict[str, Any] = {}
        problems: list[str] = []
        types = {f.name: f.type for f in fields(cls)}
        for name, kind in types.items():
            key = ENV_PREFIX + name.upper()
            if key in env:
                try:
                    raw[name] = _parse(kind, env[key])
                except ValueError as exc:
                    problems.append(f"{key}={env[key]!r}: {exc}")
        for name, value in overrides.items():
            if name not in types:
                problems.append(f"unknown setting {name!r}")
            elif isinstance(value, str):
                try:
                    raw[name] = _parse(types[name], value)
                except ValueError as exc:
                    problems.append(f"--{name.replace('_', '-')}={value!r}: {exc}")
                    raw.pop(name, None)
            elif value is not None:
                raw[name] = value
        # Range checks run on whatever parsed, so one message lists every kind of problem;
        # a value that did not parse is left at its default for them.
        try:
            settings = cls(**raw)
            settings.validate()
        except ConfigError as exc:
            problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)
        return settings

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes` applied and validated."""
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def validate(self) -> None:
        """Raise ConfigError listing every value out of range."""
        p: list[str] = []
        if not 0 <= self.port <= 65535:
            p.append("port must be 0..65535")
        if self.log_level.upper() not in _LOG_LEVELS:
            p.append(f"log_level must be one of {sorted(_LOG_LEVELS)}")
        if self.log_format not in ("text", "json"):
            p.append("log_format must be 'text' or 'json'")
        if self.sqlite_synchronous.upper() not in _SYNC_MODES:
            p.append(f"sqlite_synchronous must be one of {sorted(_SYNC_MODES)}")
        if self.database_url and not self.database_url.startswith(_DATABASE_SCHEMES):
            p.append("database_url must start with postgresql:// (or be empty for SQLite)")
        if self.database_pool_size < 2:
            p.append("database_pool_size must be >= 2")
        if self.password_hashing not in {"default", "fast"}:
            p.append("password_hashing must be 'default' or 'fast'")
        for name in (
            "token_ttl_s",
            "ping_interval_s",
            "pong_timeout_s",
            "shutdown_grace_s",
            "send_rate_per_s",
            "join_rate_per_s",
            "frame_rate_per_s",
            "typing_interval_s",
            "login_window_s",
            "first_frame_timeout_s",
            "outbox_stall_s",
            "broker_hold_s",
            "upload_grace_s",
            "upload_claim_margin_s",
            "presence_lease_s",
            "presence_refresh_s",
        ):
            if getattr(self, name) <= 0:
                p.append(f"{name} must be > 0")
        if self.pong_timeout_s <= self.ping_interval_s:
            p.append("pong_timeout_s must be greater than ping_interval_s")
        for name in (
            "max_frame_bytes",
            "max_text_chars",
            "outbox_size",
            "replays_per_user",
            "batch_max_events",
            "group_commit_max",
            "history_page_max",
            "resume_page",
            "send_burst",
            "join_burst",
            "frame_burst",
            "rate_strikes",
            "max_connections_per_user",
            "max_connections",
            "max_rooms_per_user",
            "room_creations_per_hour",
            "login_failures",
            "login_name_failures",
            "login_address_failures",
            "signup_rate_per_h",
            "listen_backlog",
            "broker_buffer",
            "max_upload_bytes",
            "upload_quota_bytes",
        ):
            if getattr(self, name) < 1:
                p.append(f"{name} must be >= 1")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            p.append("redis_url must start with redis://, rediss:// or unix://")
        if not 1 <= self.workers <= MAX_WORKERS:
            p.append(f"workers must be 1..{MAX_WORKERS}")
        elif self.workers > 1 and not self.redis_url:
            p.append(
                f"workers={self.workers} needs Redis (NOCHAT_REDIS_URL): it carries each "
                "room's events and the signals between the workers"
            )
        elif self.workers > 1 and not self.database_url:
            p.append(
                f"workers={self.workers} needs PostgreSQL (NOCHAT_DATABASE_URL): SQLite "
                "serves one process only"
            )
        if self.presence_refresh_s * 2 > self.presence_lease_s:
            p.append("presence_refresh_s must be at most half of presence_lease_s")
        if self.max_frame_bytes < 1024:
            p.append("max_frame_bytes must be >= 1024")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                p.append(f"trusted_proxies: {proxy!r} is not an address or CIDR")
        if bool(self.certfile) != bool(self.keyfile):
            p.append("certfile and keyfile must be set together (TLS needs both)")
        if self.outbox_bytes < 64 * 1024:
            p.append("outbox_bytes must be >= 65536")
        if p:
            raise ConfigError(p)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "nochat.sqlite3"

    @property
    def tls(self) -> bool:
        return bool(self.certfile)


def _parse(kind: Any, text: str) -> Any:
    """Parse one environment string into the field's declared type (given as a string)."""
    kind = str(kind)
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    if kind == "bool":
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("expected true/false")
    if kind == "Path":
        return Path(text)
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return text


#: NOCHAT_* variables that are not settings but are read elsewhere (tests, benchmarks).
OTHER_VARIABLES = frozenset(
    {
        "NOCHAT_REQUIRE_SERVICES",
        "NOCHAT_UPDATE_SCREENSHOTS",
        "NOCHAT_BENCH_SERVER_SRC",
        # bench/loadgen.py: the shared peers' folder, and where their build.sh builds.
        "NOCHAT_PEERS",
        "NOCHAT_PEERS_DIR",
    }
)


def unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """One warning line per `NOCHAT_*` variable no setting reads (a typo is ignored
    silently otherwise), with the closest known name when there is one."""
    env = os.environ if env is None else env
    known = [ENV_PREFIX + f.name.upper() for f in fields(Settings)]
    warnings = []
    for key in sorted(env):
        if key.startswith(ENV_PREFIX) and key not in known and key not in OTHER_VARIABLES:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"unknown variable {key} is ignored{hint}")
    return warnings
