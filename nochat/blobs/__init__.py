"""The BlobStore contract: file records and their content-addressed bytes.

`nochat.backends.open_blobs` picks the backend: `local.py` (a directory in the data
directory, records in a small SQLite index beside it) by default, `postgres.py` (chunked
rows every node reaches) with NOCHAT_DATABASE_URL. tests/blobs/test_contract.py runs the
same suite on both.

A file is a record (who uploaded it to which room, its name, sniffed type, size, hash,
image size, thumbnail) pointing at a blob named by its SHA-256. Several records may share
one blob; a blob goes at a `collect` once no record names it and no upload has just put
it (candidates.py: a removal never deletes bytes an upload is about to name).

Which message a file belongs to is the room log's to say, not this catalogue's: `claim`,
`bind` and the removals record what the log said, and nochat/file_reconcile.py makes the
catalogue agree with the log again when a change was lost.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator, AsyncIterable, Sequence
from typing import Protocol

import msgspec
import trio

#: Bytes per stored chunk and per read from a blob (PostgreSQL rows, file reads).
CHUNK_BYTES = 256 * 1024
#: How long an upload's quota reservation holds: one whose upload never ended (its node
#: died) stops counting after this. An upload still running then may take its user past
#: the quota by that one file.
RESERVATION_TTL_MS = 3_600_000


def new_file_id() -> str:
    """An unguessable file id (it appears in URLs; access is still checked on each read)."""
    return secrets.token_hex(16)


class Blob(msgspec.Struct, frozen=True):
    sha256: str
    size: int


class FileRecord(msgspec.Struct, frozen=True):
    id: str
    room: str
    user_id: int
    name: str
    size: int
    content_type: str
    sha256: str
    created_ms: int
    width: int | None = None
    height: int | None = None
    #: The thumbnail's blob (images only).
    thumb_sha256: str | None = None
    #: "<user id>:<client_id>" of the send that attached it; None while unattached.
    attached_to: str | None = None
    #: The message it is attached to, once that has committed (deleting it removes this).
    message_id: str | None = None
    #: When `attached_to` was set (ms): a claim its send never stored is undone only
    #: well after this (file_reconcile.py).
    claimed_ms: int | None = None


class Reservation(msgspec.Struct, frozen=True):
    """Quota set aside for one upload in progress (`BlobStore.reserve`)."""

    id: str
    nbytes: int


class BlobStore(Protocol):
    """Where files live. Every method may raise StorageError."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the store (started() once usable), then serve until `close()`."""
        ...

    def close(self) -> None: ...

    async def put(self, chunks: AsyncIterable[bytes]) -> Blob:
        """Store the bytes `chunks` yields durably (on disk or committed) and return their
        hash and size. An exception from `chunks` leaves nothing behind and propagates.
        The blob counts as put now, also when it was stored already (`collect`)."""
        ...

    async def collect(self, before_ms: int) -> int:
        """Delete blobs a removal (or a `put`) made candidates that no record names and
        that were not put at or after `before_ms`; at most candidates.COLLECT_BATCH
        candidates are settled per call, oldest first. How many blobs went."""
        ...

    def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The blob's bytes [start, end) in chunks of at most CHUNK_BYTES."""
        ...

    async def add_file(self, record: FileRecord, reservation: str | None = None) -> None:
        """Store the record; the upload's reservation, if any, ends in the same step."""
        ...

    async def reserve(
        self, user_id: int, *, at_least: int, at_most: int, quota: int, now_ms: int
    ) -> Reservation | None:
        """Set aside min(at_most, what `quota` leaves) bytes for an upload of `user_id`,
        if that is at least `at_least`; else None. Atomic with every other reservation
        of that user, on every node: what the user's files and live reservations (younger
        than RESERVATION_TTL_MS) hold, plus this one, never passes `quota`."""
        ...

    async def release(self, reservation: str) -> None:
        """End a reservation (the upload failed, or it is stored: then a no-op)."""
        ...

    async def file(self, file_id: str) -> FileRecord | None: ...

    async def attached_files(self, *, after: str, limit: int) -> list[FileRecord]:
        """Files claimed by a send (bound to its message or not), by id, ids after `after`:
        the pages reconciliation walks."""
        ...

    async def claim(
        self, file_ids: Sequence[str], *, user_id: int, room: str, key: str, now_ms: int
    ) -> bool:
        """Attach the files to the send `key` in one step (claimed at `now_ms`): True when
        every one was uploaded by `user_id` to `room` and is unattached or already attached
        to `key` (a retry, which claims them anew); else nothing changes and False."""
        ...

    async def unclaim(
        self, file_ids: Sequence[str], *, key: str, claimed_before_ms: int | None = None
    ) -> None:
        """Undo `claim` for the files `key` claimed that no committed message holds (the
        send was refused), and only those claimed before `claimed_before_ms` when given
        (a retry's claim since is kept): they are unattached again, free to attach or to
        be swept."""
        ...

    async def bind(self, file_ids: Sequence[str], message_id: str) -> None:
        """Record the committed message the (claimed) files belong to."""
        ...

    async def remove_message(self, message_id: str) -> int:
        """Remove the files bound to a message (it was deleted); how many. Removals forget
        records; their blobs become candidates for `collect`."""
        ...

    async def used_bytes(self, user_id: int) -> int:
        """The bytes of every file `user_id` has (attached or not)."""
        ...

    async def remove_files(self, file_ids: Sequence[str]) -> None:
        """Forget the files (their blobs become candidates for `collect`)."""
        ...

    async def remove_unattached(self, before_ms: int) -> int:
        """Remove files not attached (unclaimed, unbound) uploaded before `before_ms`; how
        many (their blobs become candidates for `collect`)."""
        ...
