"""Files: uploads into a room, attachments on sends, who may read a file, and cleanup.

The service between the HTTP routes (files_api.py), the send paths (connection.py,
http_api.py) and the BlobStore. Rules, in one place:
- only a room's members upload to it; each user's files together stay within
  NOCHAT_UPLOAD_QUOTA_BYTES (reserved before the body is read, so uploads at once
  cannot pass it together), each file within NOCHAT_MAX_UPLOAD_BYTES;
- a send attaches at most MAX_ATTACHMENTS files, each uploaded by the sender to that room
  and attached to nothing else (a retry of the same send may claim them again);
- a file is readable by whoever may read its room once the room log holds the message
  that attaches it, by its uploader before; the log, not the catalogue's own record,
  decides (file_reconcile.py: `readable` settles each file against the log);
- files never attached are removed NOCHAT_UPLOAD_GRACE_S after upload (`run`), and a
  deleted message's files are removed with it: at once by the commit's fast path (a
  bounded in-memory queue, best effort), else by the log-driven reconciliation that
  every sweep pass runs (and every download of such a file).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import IO

import msgspec
import trio

from .blobs import CHUNK_BYTES, Blob, BlobStore, FileRecord, new_file_id
from .blobs.media import IMAGE_TYPES, SNIFF_BYTES, ImageError, Thumbnail, make_thumbnail, sniff
from .blobs.metadata import strip_metadata
from .errors import NotFound, StorageError, Unavailable, ValidationError
from .file_reconcile import FileReconciler
from .settings import Settings
from .store import AppendRequest, Attachment, Event, Room, Store, User, now_ms, unpack_payload
from .uploads import QuotaExceeded, TooLarge, limited

log = logging.getLogger(__name__)

#: Most files one message may carry.
MAX_ATTACHMENTS = 10
#: Committed file changes (binds, deletes) waiting to be applied: the fast path only, a
#: change dropped when it is full is repaired from the room log (file_reconcile.py).
CHANGES_QUEUE = 10_000
#: How often the cleanup and the reconciliation run, at most and at least.
CLEANUP_MAX_INTERVAL_S = 300.0
CLEANUP_MIN_INTERVAL_S = 0.05


@dataclass(frozen=True)
class Grant:
    """An upload's reserved quota: at most `nbytes`, `error` past them."""

    reservation: str
    nbytes: int
    error: TooLarge


class FileService:
    def __init__(self, blobs: BlobStore, settings: Settings, store: Store) -> None:
        self.blobs = blobs
        self.settings = settings
        self.reconciler = FileReconciler(blobs, store, settings)
        self._thumb_limiter = trio.CapacityLimiter(1)  # decoding images is CPU-heavy
        self._swept = trio.Event()
        # Committed messages' files to bind, deleted messages' files to remove, in commit
        # order: fed by the store's commit listener (which cannot wait), taken by `run`.
        self._changes_in, self._changes_out = trio.open_memory_channel[tuple[str, str, list[str]]](
            CHANGES_QUEUE
        )
        self._changes_done = 0
        self._changed = trio.Event()

    @asynccontextmanager
    async def reserved(
        self, user: User, at_least: int = 0, at_most: int | None = None
    ) -> AsyncIterator[Grant]:
        """The quota for one upload of `at_least` to `at_most` bytes (None: as many as
        the file limit allows), set aside for the block (blobs/reservations.py): as much
        of that as the quota leaves. TooLarge / QuotaExceeded at once when not even
        `at_least` may be stored."""
        max_bytes = self.settings.max_upload_bytes
        if at_least > max_bytes:
            raise TooLarge(f"files may be at most {max_bytes} bytes")
        wanted = max_bytes if at_most is None else min(at_most, max_bytes)
        found = await self.blobs.reserve(
            user.id,
            at_least=at_least,
            at_most=wanted,
            quota=self.settings.upload_quota_bytes,
            now_ms=now_ms(),
        )
        if found is None:
            raise QuotaExceeded("this upload would exceed your quota")
        error = (
            QuotaExceeded("this upload would exceed your quota")
            if found.nbytes < wanted
            else TooLarge(f"files may be at most {max_bytes} bytes")
        )
        try:
            yield Grant(found.id, found.nbytes, error)
        finally:  # a no-op once the file is stored (add_file ended it)
            with trio.CancelScope(shield=True):
                try:
                    await self.blobs.release(found.id)
                except StorageError:
                    log.warning("an upload's reservation stays until it expires")

    async def upload(
        self,
        user: User,
        room: Room,
        name: str,
        body: AsyncIterable[bytes],
        grant: Grant,
    ) -> FileRecord:
        """Store the bytes `body` yields (counted against the grant) as a file of `room`."""
        async with aclosing(limited(body, grant.nbytes, grant.error)) as stream:
            head = b""
            async for piece in stream:  # the first bytes decide the type; read on after
                head += piece
                if len(head) >= SNIFF_BYTES:
                    break
            content_type = sniff(head)

            async def chunks() -> AsyncGenerator[bytes, None]:
                if head:
                    yield head
                async for piece in stream:
                    yield piece

            async with aclosing(chunks()) as source:
                if content_type in IMAGE_TYPES:
                    blob, thumb = await self._put_image(source, content_type)
                else:
                    blob, thumb = await self.blobs.put(source), None
        record = FileRecord(
            new_file_id(), room.name, user.id, name, blob.size, content_type, blob.sha256, now_ms()
        )
        if thumb is not None:
            thumb_blob = await self.blobs.put(_once(thumb.data))
            record = msgspec.structs.replace(
                record, width=thumb.width, height=thumb.height, thumb_sha256=thumb_blob.sha256
            )
        await self.blobs.add_file(record, grant.reservation)
        return record

    async def _put_image(
        self, source: AsyncIterable[bytes], content_type: str
    ) -> tuple[Blob, Thumbnail | None]:
        """Store an image without its metadata (blobs/metadata.py: what is served is what
        is stored, so `sha256` is of the stripped bytes) and make its thumbnail, once.
        The upload is spooled to the data directory, never held in memory; an image that
        does not decode is still stored, without a thumbnail."""
        spool_dir = self.settings.data_dir
        with (
            tempfile.TemporaryFile(dir=spool_dir) as raw,
            tempfile.TemporaryFile(dir=spool_dir) as clean,
        ):
            async for piece in source:
                await trio.to_thread.run_sync(raw.write, piece)
            await trio.to_thread.run_sync(raw.seek, 0)
            await trio.to_thread.run_sync(
                strip_metadata, raw, clean, content_type, limiter=self._thumb_limiter
            )
            await trio.to_thread.run_sync(clean.seek, 0)
            blob = await self.blobs.put(_file_chunks(clean))
            await trio.to_thread.run_sync(clean.seek, 0)
            try:
                thumb = await trio.to_thread.run_sync(
                    make_thumbnail, clean, limiter=self._thumb_limiter
                )
            except ImageError:
                log.info("an upload does not decode as an image: no thumbnail")
                thumb = None
        return blob, thumb

    async def attach(
        self, user: User, room: Room, file_ids: Sequence[str], client_id: str
    ) -> tuple[Attachment, ...]:
        """Claim the files for the send (user, client_id); ValidationError if any may not."""
        if not file_ids:
            return ()
        if len(file_ids) > MAX_ATTACHMENTS or len(set(file_ids)) != len(file_ids):
            raise ValidationError(
                f"at most {MAX_ATTACHMENTS} different files per message", code="bad_attachment"
            )
        key = _claim_key(user, client_id)
        claimed = await self.blobs.claim(
            file_ids, user_id=user.id, room=room.name, key=key, now_ms=now_ms()
        )
        if not claimed:
            raise ValidationError(
                "attachments must be your own uploads to this room, not attached elsewhere",
                code="bad_attachment",
            )
        found = []
        for file_id in file_ids:
            record = await self.blobs.file(file_id)
            if record is None:  # removed between the claim and now (message deleted)
                raise ValidationError("an attachment is gone", code="bad_attachment")
            found.append(attachment_of(record))
        return tuple(found)

    async def refused(self, request: AppendRequest) -> None:
        """The send that claimed these files was refused (reply_to not found, …): they
        are free again (else they stayed claimed by a message that never was, neither
        attachable nor swept, on the user's quota for good)."""
        if request.attachments:
            ids = [a.id for a in request.attachments]
            await self.blobs.unclaim(ids, key=_claim_key(request.user, request.client_id))

    def refused_nowait(self, request: AppendRequest) -> None:
        """`refused`, from a callback that cannot wait (the socket's append callback)."""
        if request.attachments:
            key = _claim_key(request.user, request.client_id)
            self._queue(("unclaim", key, [a.id for a in request.attachments]))

    async def readable(self, user: User, file_id: str) -> FileRecord:
        """The file if `user` may see it before the room check (the caller's, with
        `visible_room`): attached to a message the log holds, or their own upload; the
        same NotFound as a missing file. The log decides (FileReconciler.settle)."""
        record = await self.blobs.file(file_id) if _valid_id(file_id) else None
        if record is not None:
            record = await self.reconciler.settle(record)
        if record is None or (record.message_id is None and record.user_id != user.id):
            raise NotFound("no such file")
        return record

    def on_event(self, event: Event) -> None:
        """A committed room-log event (from the commit listener, which cannot wait): a
        message's files are bound to it; a deleted message's files go with it."""
        if event.kind == "delete" and event.target:
            self._queue(("delete", event.target, []))
        elif event.kind == "message":
            _, attachments = unpack_payload(event.payload)
            if attachments:
                self._queue(("bind", event.id, [a.id for a in attachments]))

    def _queue(self, change: tuple[str, str, list[str]]) -> None:
        try:
            self._changes_in.send_nowait(change)
        except trio.WouldBlock:
            log.warning("file changes queue full: message %s's files not updated", change[1])

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Apply committed messages' file changes; sweep files never attached."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._apply_changes)
            await nursery.start(self._sweep)
            task_status.started()

    async def _apply_changes(self) -> None:
        async with self._changes_out:
            async for kind, message_id, file_ids in self._changes_out:
                try:
                    if kind == "bind":
                        await self.blobs.bind(file_ids, message_id)
                    elif kind == "unclaim":  # message_id: the claim's key
                        await self.blobs.unclaim(file_ids, key=message_id)
                    elif await self.blobs.remove_message(message_id):
                        await self.reconciler.collect(now_ms())
                except StorageError:
                    log.exception("files of message %s not updated", message_id)
                self._changes_done += 1
                self._changed.set()
                self._changed = trio.Event()

    async def wait_changes(self, count: int) -> None:
        """Wait until `count` file changes have been applied in all (tests)."""
        while self._changes_done < count:
            await self._changed.wait()

    async def _sweep(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """At start and then every interval: repair from the room log what the fast path
        lost (file_reconcile.py), remove files never attached NOCHAT_UPLOAD_GRACE_S after
        their upload, and delete the bytes no file names any more."""
        grace_s = self.settings.upload_grace_s
        shortest = min(grace_s, self.settings.upload_claim_margin_s)
        interval = min(CLEANUP_MAX_INTERVAL_S, max(CLEANUP_MIN_INTERVAL_S, shortest / 4))
        task_status.started()
        while True:
            now = now_ms()
            try:
                await self.reconciler.run_pass(now)
                removed = await self.blobs.remove_unattached(now - int(grace_s * 1000))
                if removed:
                    log.info("removed %d unattached files", removed)
                await self.reconciler.collect(now)
            except Unavailable:  # storage failing or closing (StorageError): retried next pass
                log.warning("file cleanup pass failed", exc_info=True)
            self._swept.set()
            self._swept = trio.Event()
            await trio.sleep(interval)

    async def wait_sweep(self) -> None:
        """Wait until the cleanup has made its next pass (tests, operators' tools)."""
        await self._swept.wait()


def attachment_of(record: FileRecord) -> Attachment:
    return Attachment(
        record.id, record.name, record.size, record.content_type, record.width, record.height
    )


def _claim_key(user: User, client_id: str) -> str:
    """The key a send's files are claimed under: its (user, client_id)."""
    return f"{user.id}:{client_id}"


def _valid_id(file_id: str) -> bool:
    return len(file_id) == 32 and all(c in "0123456789abcdef" for c in file_id)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _file_chunks(spool: IO[bytes]) -> AsyncIterator[bytes]:
    while piece := await trio.to_thread.run_sync(spool.read, CHUNK_BYTES):
        yield piece
