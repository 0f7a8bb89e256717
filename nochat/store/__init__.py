"""The Store protocol and its records; `sqlite.py` is the embedded default backend.

Callers hold a `Store`, never a concrete class: `nochat.backends.open_store` picks the
backend from the settings, and everything a caller touches is declared here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import msgspec
import trio

from .admin_records import Account as Account
from .admin_records import AccountFlag as AccountFlag
from .admin_records import AdminRoom as AdminRoom
from .admin_records import AuditEntry as AuditEntry
from .admin_records import Role as Role
from .admin_records import SessionInfo as SessionInfo
from .ids import new_id as new_id


def now_ms() -> int:
    """Wall-clock milliseconds since the Unix epoch: the unit of every `ts` and expiry."""
    return time.time_ns() // 1_000_000


class User(msgspec.Struct, frozen=True):
    id: int
    name: str


class Room(msgspec.Struct, frozen=True):
    id: int
    name: str
    private: bool
    dm: bool
    owner_id: int | None
    head_seq: int
    #: Readable, but nothing new may be written in it (admins archive rooms).
    archived: bool = False


class Attachment(msgspec.Struct, frozen=True, omit_defaults=True):
    """A file a message carries, as events and history show it (nochat/files.py)."""

    id: str
    name: str
    size: int
    content_type: str
    width: int | None = None
    height: int | None = None


#: A message payload that starts with this is JSON {"text", "attachments"} after it; any
#: other is the text alone, as every message before attachments was stored. Text that
#: itself starts with the mark is stored in the JSON form too, so the two never mix up.
#: Not NUL: PostgreSQL text cannot hold it.
_PAYLOAD_MARK = "\x01"


class _Payload(msgspec.Struct, frozen=True):
    text: str
    attachments: tuple[Attachment, ...]


def pack_payload(text: str, attachments: tuple[Attachment, ...]) -> str:
    """A message event's stored payload."""
    if not attachments and not text.startswith(_PAYLOAD_MARK):
        return text
    return _PAYLOAD_MARK + msgspec.json.encode(_Payload(text, attachments)).decode()


def unpack_payload(payload: str) -> tuple[str, tuple[Attachment, ...]]:
    """A message event's text and attachments from its stored payload."""
    if not payload.startswith(_PAYLOAD_MARK):
        return payload, ()
    found = msgspec.json.decode(payload[1:], type=_Payload)
    return found.text, found.attachments


class SentMessage(msgspec.Struct, frozen=True):
    """A message as the log holds it under its author's (user id, client_id): what
    decides the files a send claimed (store/file_refs.py)."""

    user_id: int
    client_id: str
    id: str
    room: str
    deleted: bool
    #: The files its payload lists (none once deleted: the delete scrubs the list).
    file_ids: tuple[str, ...]


class Message(msgspec.Struct, frozen=True):
    """One stored message in its current state (history folds its edits, delete and
    reactions in); its JSON form is the `message` event without `type`, plus the state."""

    room: str
    id: str
    seq: int
    user: str
    text: str
    ts: int
    client_id: str
    edited_ts: int | None = None
    deleted: bool = False
    #: emoji → the users who reacted with it, in the order they did.
    reactions: dict[str, list[str]] = msgspec.field(default_factory=dict)
    reply_to: str | None = None
    #: Users the text @-mentions who can see the room (store/mentions.py).
    mentions: list[str] = msgspec.field(default_factory=list)
    #: Its files (none once deleted: the payload that lists them is scrubbed).
    attachments: tuple[Attachment, ...] = ()
    #: DELETED_BY_MODERATOR when an admin deleted it (None: its author or room owner did).
    deleted_by: str | None = None


#: What a room-log row records: a message, or a change to one ("edit", "delete",
#: "reaction"; `target` names the message). Each takes a seq. docs/STORAGE.md.
EventKind = Literal["message", "edit", "delete", "reaction"]


#: A delete event's payload when an admin made it (any other delete's is ""): the event
#: and the tombstone say `by: "moderator"`.
DELETED_BY_MODERATOR = "moderator"


class Event(msgspec.Struct, frozen=True):
    """One row of a room's log, as replay returns it."""

    room: str
    id: str
    seq: int
    kind: EventKind
    user: str
    client_id: str
    ts: int
    target: str | None
    payload: str
    #: A message's reply_to and mentions (None and [] for the other kinds).
    reply_to: str | None = None
    mentions: list[str] = msgspec.field(default_factory=list)


class Ack(msgspec.Struct, frozen=True):
    room: str
    client_id: str
    id: str
    seq: int
    ts: int


class AppendRequest(msgspec.Struct, frozen=True):
    """One event to append. A message has `text` and no target; an edit has the new text,
    a delete "", a reaction `reaction_payload(emoji, on)`; each names its `target`."""

    room: Room
    user: User
    text: str
    client_id: str
    kind: EventKind = "message"
    target: str | None = None
    #: A message answering another of the same room.
    reply_to: str | None = None
    #: A message's files (claimed by FileService.attach before the append).
    attachments: tuple[Attachment, ...] = ()

    def payload(self) -> str:
        """What the event row stores: a message's text and files, else the text."""
        return pack_payload(self.text, self.attachments) if self.kind == "message" else self.text


def reaction_payload(emoji: str, on: bool) -> str:
    """A reaction event's payload: "+" (added) or "-" (removed), then the emoji."""
    return ("+" if on else "-") + emoji


class SearchHit(msgspec.Struct, frozen=True):
    """One message a search found, in its current text. `snippet` marks the matched
    words with « and » (plain text: never HTML) and elides with …"""

    room: str
    seq: int
    id: str
    user: str
    text: str
    snippet: str
    ts: int


#: The marks around a matched word in a SearchHit's snippet, and the elision.
SNIPPET_OPEN, SNIPPET_CLOSE, SNIPPET_ELLIPSIS = "«", "»", "…"


class UserStatus(msgspec.Struct, frozen=True):
    """What a user said about themself (`state`: online, away or busy; a short text) and
    when their last connection ended (ms; None: never recorded). Not presence: whether
    they are connected is the server's to know (Presence)."""

    name: str
    state: str
    text: str
    last_seen: int | None


class Session(msgspec.Struct, frozen=True):
    id: str
    user_id: int
    expires_at_ms: int


class RoomView(msgspec.Struct, frozen=True):
    """A room as one user sees it in their room list."""

    name: str
    private: bool
    dm: bool
    member: bool
    head_seq: int
    last_read: int
    unread: int
    #: Unread messages that mention the user.
    mentions: int = 0


#: Called by the store's writer, in seq order, with each batch of newly committed events.
CommitListener = Callable[[Sequence[Event]], None]
#: Called by the store's writer with one append's outcome: an Ack or the error it raised.
AppendCallback = Callable[[Ack | BaseException], None]


CommitObserver = Callable[[float, int], None]


def ignore_commit(seconds: float, size: int) -> None:
    """The default CommitObserver: nobody watches."""


class StoreStatistics(msgspec.Struct, frozen=True):
    """Counters since the store started (the Prometheus collector reads them)."""

    commits: int
    committed_messages: int


class Store(Protocol):
    """What NoChat needs from a database. Every method may raise StorageError."""

    #: A random id made once per database; a client seeing another one drops its cache.
    epoch: str
    #: "ok", "failed" (writes are failing now) or "damaged" (a read found corruption).
    health: str
    #: Called by the writer, in seq order, with each batch of newly committed events.
    on_commit: CommitListener
    #: Called by the writer after each group commit: its seconds and how many requests
    #: it carried (the /metrics histograms).
    observe_commit: CommitObserver
    #: The token signing secret every node sharing this database uses, once `run` has
    #: started; "" when the backend keeps none (SQLite: the data directory holds it).
    shared_secret: str

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the database (started() once usable), then write until `close()` drains it."""
        ...

    def close(self) -> None:
        """Stop taking appends; what is queued still commits, then `run` returns."""
        ...

    def statistics(self) -> StoreStatistics: ...

    def published_head(self, room: Room) -> int | None:
        """The room's highest seq this process has committed and published (None: unknown)."""
        ...

    async def append(self, request: AppendRequest) -> Ack:
        """Store an event durably (idempotent on (user, client_id)) and return its ack.

        A change (edit, delete, reaction) is checked in the commit's transaction
        (changes.py): NotFound (no such message in the room), Forbidden (not yours),
        Conflict `deleted`; a reaction that changes nothing is acked without an event."""
        ...

    async def submit(self, request: AppendRequest, done: AppendCallback) -> None:
        """Queue an append; `done` is called after it commits (or fails). Waits for queue room."""
        ...

    async def history(
        self, room: Room, *, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        """A page of the room's messages in their current state, by seq (oldest first)."""
        ...

    async def replay(self, room: Room, *, after: int, limit: int) -> list[Event]:
        """The room's log events with seq > `after`, in seq order, every kind."""
        ...

    async def head_seq(self, room: Room) -> int: ...

    async def sent_messages(self, senders: Sequence[tuple[int, str]]) -> list[SentMessage]:
        """The messages stored under these (user id, client_id) pairs (none for a pair
        the log has no message under); one indexed query (file_refs.py)."""
        ...

    async def live_messages(self, message_ids: Sequence[str]) -> dict[str, str]:
        """Those of `message_ids` that are messages of the log, not deleted, with the name
        of the room each is in now (a deleted room's is `~<id>`); one query."""
        ...

    async def set_status(self, user: User, state: str, text: str) -> None:
        """Store the user's status (it outlives connections and restarts)."""
        ...

    async def set_last_seen(self, user: User, ts: int) -> None: ...

    async def status(self, user: User) -> UserStatus:
        """The stored status; `online` with no text when none was ever set."""
        ...

    async def search(
        self, user: User, q: str, *, room: Room | None, before: str | None, limit: int
    ) -> list[SearchHit]:
        """Messages `user` can see (public rooms, and private ones they are a member of)
        whose current text holds every word of `q`, newest first (by id), ids below
        `before` when given, in `room` when given. Deleted messages are never found."""
        ...

    async def create_user(self, name: str, password_hash: str) -> User: ...

    async def user_credentials(self, name: str) -> tuple[User, str] | None: ...

    async def user_by_name(self, name: str) -> User | None: ...

    async def user_by_id(self, user_id: int) -> User | None: ...

    async def create_session(
        self, user_id: int, expires_at_ms: int, address: str = ""
    ) -> Session: ...

    async def session(self, session_id: str) -> Session | None: ...

    async def extend_session(self, session_id: str, expires_at_ms: int) -> Session: ...

    async def revoke_session(self, session_id: str) -> None: ...

    async def create_room(
        self,
        name: str,
        *,
        private: bool,
        owner: User | None,
        dm: bool = False,
        max_owned: int | None = None,
    ) -> Room:
        """Make a room; Conflict if the name is taken, Forbidden (`room_limit`) if `owner`
        owns `max_owned` rooms already (checked in the same transaction as the insert)."""
        ...

    async def room(self, name: str) -> Room | None: ...

    async def rooms_for(
        self, user: User, *, after: str | None, limit: int
    ) -> tuple[list[RoomView], str | None]:
        """One page of `user`'s room list and the cursor of the next (None: no more).

        The first page (`after` None) holds every room `user` is a member of, however
        many, then the first `limit` public rooms they have not joined, by name; later
        pages hold only the next `limit` of those public rooms with names after `after`.
        """
        ...

    async def room_count(self) -> int: ...

    async def is_member(self, room: Room, user: User) -> bool: ...

    async def add_member(self, room: Room, user: User) -> None: ...

    async def members(self, room: Room) -> list[str]: ...

    async def set_read(self, room: Room, user: User, seq: int) -> None: ...

    async def open_dm(self, a: User, b: User) -> Room: ...

    # ---- accounts and moderation (admin_queries.py) ------------------------------------

    async def account(self, user_id: int) -> Account | None:
        """The account (None: no such user, or deleted)."""
        ...

    async def account_by_name(self, name: str) -> Account | None: ...

    async def accounts(self, q: str, *, after: str | None, limit: int) -> list[Account]:
        """Accounts whose name holds `q` (any case), by name, names after `after`."""
        ...

    async def set_role(self, name: str, role: Role) -> Account | None:
        """Give the named account `role`; None when there is no such account."""
        ...

    async def set_account_flag(self, user_id: int, flag: AccountFlag, value: int | None) -> None:
        """Set disabled_ms, banned_ms or muted_until (None clears it)."""
        ...

    async def set_password(self, user_id: int, password_hash: str) -> None: ...

    async def user_sessions(self, user_id: int) -> list[SessionInfo]:
        """The user's live sessions, newest first."""
        ...

    async def end_sessions(self, user_id: int, *, keep: str | None = None) -> list[str]:
        """Revoke every session of the user but `keep`; the ids of those it ended."""
        ...

    async def delete_account(self, user_id: int) -> list[str]:
        """Delete the account: sessions, memberships and status go, the name is freed, its
        messages stay (shown as `deleted user`). The ids of the sessions it ended."""
        ...

    async def put_reset(self, user_id: int, token_sha256: str, expires_ms: int) -> None:
        """Store the user's one password-reset token (its hash), replacing any earlier."""
        ...

    async def take_reset(self, token_sha256: str) -> int | None:
        """Use up a reset token: the user id it was for; None if unknown, used or expired."""
        ...

    async def add_audit(self, actor: str, action: str, target: str, detail: str) -> None: ...

    async def audit_page(self, *, before: int | None, limit: int) -> list[AuditEntry]:
        """Audit entries newest first, ids below `before` when given."""
        ...

    async def admin_rooms(self, q: str, *, after: str | None, limit: int) -> list[AdminRoom]:
        """Every room (DMs too) whose name holds `q`, by name, names after `after`."""
        ...

    async def admin_room(self, name: str) -> AdminRoom | None:
        """One room as admin_rooms lists it (None: no such room)."""
        ...

    async def set_archived(self, room_id: int, archived: bool) -> None: ...

    async def make_private(self, room_id: int) -> None: ...

    async def set_owner(self, room_id: int, user_id: int) -> None: ...

    async def remove_member(self, room_id: int, user_id: int) -> None: ...

    async def delete_room(self, room_id: int) -> None:
        """The room is gone for everyone: its name free, its text removed from storage."""
        ...
