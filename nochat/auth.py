"""Identity: argon2id password hashes, signed expiring session tokens, credential lookup.

A token is `base64url(payload).base64url(HMAC-SHA256(secret, payload))` where the payload
is `{"u": user_id, "s": session_id, "e": expires_at_ms}`. The signature makes tokens
unforgeable without a database read; the session row makes them revocable (logout).
Both parts are decoded strictly: only the canonical unpadded base64url text of some
bytes is accepted, so one token has exactly one spelling (no padding-bit, `=` or
stray-character variants of a revoked or logged token).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import AuthError, Forbidden, Unavailable
from .limits import HashingPool
from .store import Session, Store, User, now_ms

log = logging.getLogger(__name__)

SESSION_COOKIE = "nochat_session"
SECRET_FILE = "secret.key"
#: argon2 hashing is CPU-heavy; logins hash in at most this many worker threads at once,
#: and at most LOGIN_HASH_QUEUE more wait (beyond that: 503 + Retry-After).
HASHING_THREADS = 2
LOGIN_HASH_QUEUE = 32
#: Sign-ups hash in a pool of their own, so a sign-up flood never delays a login more
#: than one sign-up's worth of CPU: one thread, a short queue.
SIGNUP_HASHING_THREADS = 1
SIGNUP_HASH_QUEUE = 4
#: Live sessions remembered in memory (see Authenticator._remember).
LIVE_SESSIONS_CACHED = 100_000
#: Revoked session ids remembered (see Authenticator.logout); far more than logouts that
#: can overlap one request's store reads.
REVOKED_REMEMBERED = 100_000
#: Longest base64url text a token part may be.
MAX_PART_CHARS = 512
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class _Claims(msgspec.Struct, frozen=True):
    u: int
    s: str
    e: int


_claims_decoder = msgspec.json.Decoder(_Claims)


def load_or_create_secret(configured: str, data_dir: Path) -> bytes:
    """The signing secret: configured, else generated once and kept in the data directory."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = path.open("x", encoding="ascii")  # exclusive: two workers never both write it
        with fd:
            fd.write(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text(encoding="ascii").strip().encode()


def make_hasher(profile: str) -> PasswordHasher:
    """argon2id: RFC 9106's second (memory-constrained) recommendation, or a cheap test profile."""
    if profile == "fast":
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)


class Authenticator:
    """Registers users, opens and checks sessions. Safe to share across tasks."""

    def __init__(self, store: Store, secret: bytes, *, ttl_s: float, hashing: str) -> None:
        self.store = store
        self._secret = secret
        self._ttl_ms = int(ttl_s * 1000)
        self._hasher = make_hasher(hashing)
        self.login_pool = HashingPool(HASHING_THREADS, LOGIN_HASH_QUEUE)
        self.signup_pool = HashingPool(SIGNUP_HASHING_THREADS, SIGNUP_HASH_QUEUE)
        # A real hash to verify against when the user does not exist, so timing leaks nothing.
        self._dummy_hash = self._hasher.hash(secrets.token_hex(8))
        self._live: OrderedDict[str, tuple[User, Session]] = OrderedDict()
        self._revoked: OrderedDict[str, None] = OrderedDict()
        #: Counts `forget_cached`s: a read in flight across one caches nothing.
        self._epoch = 0

    def use_secret(self, secret: bytes) -> None:
        """Sign and check tokens with `secret` from now on (set at start-up, once the store
        is open: with PostgreSQL every node reads the same secret from the database)."""
        self._secret = secret

    async def register(self, name: str, password: str) -> User:
        digest = await self.signup_pool.run_sync(self._hasher.hash, password)
        return await self.store.create_user(name, digest)

    async def login(self, name: str, password: str, address: str = "") -> tuple[str, Session, User]:
        """Check a password and open a session; AuthError on any mismatch, Forbidden
        (`banned`, `disabled`) for an account an admin has shut, after a right password
        only (a guesser learns nothing about accounts whose password they lack)."""
        found = await self.store.user_credentials(name)
        stored = found[1] if found else self._dummy_hash
        ok = await self.login_pool.run_sync(self._verify, stored, password)
        if found is None or not ok:
            raise AuthError("wrong name or password", code="bad_credentials")
        user = found[0]
        account = await self.store.account(user.id)
        if account is not None and account.banned_ms is not None:
            raise Forbidden("this account is banned", code="banned")
        if account is not None and account.disabled_ms is not None:
            raise Forbidden("this account is disabled", code="disabled")
        session = await self.store.create_session(user.id, now_ms() + self._ttl_ms, address)
        return self.sign(session), session, user

    async def hash_password(self, password: str) -> str:
        """A new password's hash (password change and reset), in the sign-up pool."""
        return await self.signup_pool.run_sync(self._hasher.hash, password)

    async def check_password(self, user: User, password: str) -> bool:
        """Whether `password` is the user's (password change, account deletion)."""
        found = await self.store.user_credentials(user.name)
        stored = found[1] if found and found[0].id == user.id else self._dummy_hash
        ok = await self.login_pool.run_sync(self._verify, stored, password)
        return ok and found is not None and found[0].id == user.id

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def sign(self, session: Session) -> str:
        payload = msgspec.json.encode(_Claims(session.user_id, session.id, session.expires_at_ms))
        body = _b64(payload)
        return body + "." + _b64(self._mac(body))

    def _mac(self, body: str) -> bytes:
        if not self._secret:
            raise Unavailable("the server is starting")
        return hmac.new(self._secret, body.encode(), hashlib.sha256).digest()

    async def authenticate(self, token: str) -> tuple[User, Session]:
        """The user and live session a token stands for; AuthError when it stands for none."""
        body, _, signature = token.partition(".")
        try:
            given = _unb64(signature)
            claims = _claims_decoder.decode(_unb64(body))
        except (ValueError, msgspec.DecodeError):
            raise AuthError("malformed token", code="invalid_token") from None
        if not hmac.compare_digest(given, self._mac(body)):
            raise AuthError("bad token signature", code="invalid_token")
        if claims.e <= now_ms():
            raise AuthError("token expired", code="token_expired")
        known = self._live.get(claims.s)
        # A token newer than the cached session was refreshed on another node: re-read.
        if (
            known is not None
            and known[1].user_id == claims.u
            and known[1].expires_at_ms >= claims.e
        ):
            self._live.move_to_end(claims.s)
            return known
        epoch = self._epoch
        session = await self.store.session(claims.s)
        if session is None or session.user_id != claims.u:
            raise AuthError("session ended", code="token_revoked")
        user = await self.store.user_by_id(claims.u)
        if user is None:
            raise AuthError("no such user", code="invalid_token")
        if claims.s in self._revoked:  # logged out while the rows were read: logout wins
            raise AuthError("session ended", code="token_revoked")
        if epoch == self._epoch:
            self._remember(session, user)
        return user, session

    def _remember(self, session: Session, user: User) -> None:
        """Live sessions by id: a handshake or request costs no store round trip after the
        first. Logout on any node reaches every node's cache (`forget`, through the
        broker's session_ended signal) and a refresh elsewhere shows as a token newer
        than the cached session, so it is never stale; it is bounded (least recently used
        go first)."""
        self._live[session.id] = (user, session)
        self._live.move_to_end(session.id)
        while len(self._live) > LIVE_SESSIONS_CACHED:
            self._live.popitem(last=False)

    async def logout(self, session: Session) -> None:
        """Revoke the session. The tombstone goes in before anything awaits: a request that
        read the session row before the revoke checks it after its reads and neither
        answers nor caches the session (it would otherwise live on in the cache)."""
        self.forget(session.id)
        await self.store.revoke_session(session.id)

    def forget(self, session_id: str) -> None:
        """The session has ended (here or on another node): refuse it from now on."""
        self._revoked[session_id] = None
        while len(self._revoked) > REVOKED_REMEMBERED:
            self._revoked.popitem(last=False)
        self._live.pop(session_id, None)

    def forget_user(self, user_id: int) -> None:
        """Every cached session of the user has ended (banned, disabled, signed out)."""
        for session_id, (_, session) in list(self._live.items()):
            if session.user_id == user_id:
                self.forget(session_id)

    def forget_cached(self) -> None:
        """Signals may have been missed (resync.py): every session is read again."""
        self._live.clear()
        self._epoch += 1

    def revoked(self, session_id: str) -> bool:
        return session_id in self._revoked

    async def refresh(self, session: Session) -> tuple[str, Session]:
        """Extend a live session by the full TTL (same session id): a new token for it."""
        renewed = await self.store.extend_session(session.id, now_ms() + self._ttl_ms)
        if session.id in self._revoked:
            raise AuthError("session ended", code="token_revoked")
        known = self._live.get(session.id)
        if known is not None:
            self._remember(renewed, known[0])
        return self.sign(renewed), renewed


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict: the alphabet, no padding, and the canonical spelling (unused bits zero)."""
    if not text or len(text) > MAX_PART_CHARS or len(text) % 4 == 1:
        raise ValueError("bad length")
    if not _B64URL.issuperset(text):
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None
    if _b64(data) != text:
        raise ValueError("not the canonical encoding")
    return data


def origin_allowed(origin: str | None, host: str, allowed: tuple[str, ...]) -> bool:
    """Same origin as the Host, or one listed in NOCHAT_ALLOWED_ORIGINS (CSWSH, CSRF)."""
    if not origin or origin == "null":
        return False
    if origin in allowed or "*" in allowed:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def bearer_from_header(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
