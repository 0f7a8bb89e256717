"""The room log decides which message a file belongs to; this makes the file catalogue agree.

A send claims its files (BlobStore.claim, under "<user id>:<client_id>") before its
append; after the commit FileService.on_event queues the message's bind, or a deleted
message's removal: the fast path, which keeps the common case cheap. That queue lives in
memory and is bounded, so a crash (or a full queue) loses changes, and the catalogue
(a second SQLite database by default) cannot be written in the log's transaction.
Nothing depends on the queue being right:
- `settle`, on every download (before the room check): a claimed file whose send the log
  holds, listing it, in its room, is bound now and the room may read it; a file bound to
  (or claimed by) a message the log shows deleted, or does not hold, is removed and
  answers 404. One indexed store query at most (Store.sent_messages, by the (user_id,
  client_id) index retries use, or Store.live_messages, by event id); none for a file
  no send has claimed.
- `run_pass`, at start and on every sweep: the same repairs over the claimed files, read
  in pages by id (RECONCILE_PAGE at a time, at most RECONCILE_PAGES a pass, the cursor
  kept between passes, so a pass is bounded and a full cycle covers every file), plus:
  a claim whose send the log does not hold is undone once it is older than
  NOCHAT_UPLOAD_CLAIM_MARGIN_S (an append takes milliseconds, seconds while the store
  fails; the margin is far above: a claim younger than it may be an append in flight),
  so a refused send's files are attachable again (or swept after their grace) even when
  its unclaim was lost.
- Removed files' bytes go at `collect`: blobs nothing names and nothing put within the
  put margin (blobs/candidates.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec

from .blobs import BlobStore, FileRecord
from .settings import Settings
from .store import SentMessage, Store, now_ms

log = logging.getLogger(__name__)

#: Claimed files read per page of a reconciliation pass, and pages per pass at most.
RECONCILE_PAGE = 500
RECONCILE_PAGES = 20
#: Longest an upload may take from storing its bytes to adding its record (the thumbnail
#: is made in between): a blob put more recently is never collected. At most the upload
#: grace (an upload slower than that would lose its file to the sweep anyway).
BLOB_PUT_MARGIN_S = 600.0

Verdict = Literal["bind", "gone", "unsent"]


@dataclass
class PassCounts:
    """What one reconciliation pass repaired: each is a change the fast path lost."""

    bound: int = 0
    removed: int = 0
    unclaimed: int = 0


class FileReconciler:
    def __init__(
        self,
        blobs: BlobStore,
        store: Store,
        settings: Settings,
        *,
        page: int = RECONCILE_PAGE,
        pages: int = RECONCILE_PAGES,
    ) -> None:
        self.blobs = blobs
        self.store = store
        self.page, self.pages = page, pages
        self.claim_margin_ms = int(settings.upload_claim_margin_s * 1000)
        self.put_margin_ms = int(min(BLOB_PUT_MARGIN_S, settings.upload_grace_s) * 1000)
        #: The last file id of the pass's page (keyset); "" starts a new cycle.
        self._after = ""
        #: Full cycles over the claimed files completed.
        self.cycles = 0

    async def settle(self, record: FileRecord) -> FileRecord | None:
        """The record as the log has it: bound once its message is in the log, None (and
        removed) when the log shows its message deleted or not there."""
        if record.message_id is not None:
            live = await self.store.live_messages([record.message_id])
            if live.get(record.message_id) == record.room:
                return record
            await self.forget([record.id])
            return None
        sender = _sender(record.attached_to)
        if sender is None:
            return record
        verdict, message_id = _judge(record, sender, await self.store.sent_messages([sender]))
        if verdict == "bind":
            await self.blobs.bind([record.id], message_id)
            return msgspec.structs.replace(record, message_id=message_id)
        if verdict == "gone":
            await self.forget([record.id])
            return None
        return record

    async def run_pass(self, now: int) -> PassCounts:
        """One bounded pass of repairs, going on from where the last one stopped."""
        counts = PassCounts()
        for _ in range(self.pages):
            page = await self.blobs.attached_files(after=self._after, limit=self.page)
            await self._repair(page, now, counts)
            if len(page) < self.page:
                self._after = ""
                self.cycles += 1
                break
            self._after = page[-1].id
        if counts.bound or counts.removed or counts.unclaimed:
            log.info(
                "file changes repaired from the room log: %d bound, %d removed, %d unclaimed",
                counts.bound,
                counts.removed,
                counts.unclaimed,
            )
        return counts

    async def _repair(self, page: Sequence[FileRecord], now: int, counts: PassCounts) -> None:
        bound = [r for r in page if r.message_id is not None]
        live = await self.store.live_messages([str(r.message_id) for r in bound])
        gone = [r.id for r in bound if live.get(str(r.message_id)) != r.room]
        claimed = [(r, s) for r in page if r.message_id is None and (s := _sender(r.attached_to))]
        sent = await self.store.sent_messages([s for _, s in claimed])
        binds: dict[str, list[str]] = {}
        unclaims: dict[str, list[str]] = {}
        cutoff = now - self.claim_margin_ms
        for r, sender in claimed:
            verdict, message_id = _judge(r, sender, sent)
            if verdict == "bind":
                binds.setdefault(message_id, []).append(r.id)
            elif verdict == "gone":
                gone.append(r.id)
            elif r.claimed_ms is not None and r.claimed_ms < cutoff:
                unclaims.setdefault(str(r.attached_to), []).append(r.id)
        for message_id, ids in binds.items():
            await self.blobs.bind(ids, message_id)
        for key, ids in unclaims.items():  # a retry's claim since is kept (claimed_before_ms)
            await self.blobs.unclaim(ids, key=key, claimed_before_ms=cutoff)
        if gone:
            await self.blobs.remove_files(gone)
        counts.bound += sum(len(ids) for ids in binds.values())
        counts.unclaimed += sum(len(ids) for ids in unclaims.values())
        counts.removed += len(gone)

    async def forget(self, file_ids: Sequence[str]) -> None:
        """Remove the files; their bytes go now when no upload has put them lately."""
        await self.blobs.remove_files(file_ids)
        await self.collect(now_ms())

    async def collect(self, now: int) -> int:
        """Delete the blobs nothing names and nothing put within the put margin."""
        return await self.blobs.collect(now - self.put_margin_ms)


def _sender(key: str | None) -> tuple[int, str] | None:
    """The (user id, client_id) of a claim's key "<user id>:<client_id>"."""
    user_id, _, client_id = (key or "").partition(":")
    return (int(user_id), client_id) if user_id.isdigit() and client_id else None


def _judge(
    record: FileRecord, sender: tuple[int, str], sent: Sequence[SentMessage]
) -> tuple[Verdict, str]:
    """What the log says of a claimed, unbound file: its message (bind to it), deleted
    (remove it), or no send of its room that lists it (unsent: in flight, or refused)."""
    for message in sent:
        if (message.user_id, message.client_id) != sender or message.room != record.room:
            continue
        if message.deleted:  # its payload, the files list too, is scrubbed: the claim's
            return "gone", message.id
        if record.id in message.file_ids:
            return "bind", message.id
    return "unsent", ""
