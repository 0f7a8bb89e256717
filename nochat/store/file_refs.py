"""What the room log says about files: the message a send stored, and whether messages live.

The file catalogue (the BlobStore: a second SQLite database by default) cannot be
written in the room log's transaction, so the log is the truth and the catalogue is
made to agree with it (nochat/file_reconcile.py, docs/STORAGE.md "Files"). These are
the two questions that asks, each one indexed query for a batch:
- `sent_messages`: the messages stored under (user id, client_id) pairs, the key a
  send's files are claimed under (the unique (user_id, client_id) index that makes
  retries idempotent finds them), with the files each lists and whether it is deleted;
- `live_messages`: which message ids are messages of the log not deleted, and the room
  each is in now (the events' unique id index, then `events_target` for a delete): a
  room an admin deleted is renamed `~<id>`, so its files no longer match their room and
  a new room of the old name reads none of them.

One mixin for both backends; their SQL differs only in the parameter mark.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import SentMessage, unpack_payload

T = TypeVar("T")

_DELETED = "EXISTS (SELECT 1 FROM events d WHERE d.target_id = e.id AND d.kind = 'delete')"


class FileRefs:
    _mark: str

    async def _read(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    async def sent_messages(self, senders: Sequence[tuple[int, str]]) -> list[SentMessage]:
        pairs = list(dict.fromkeys(senders))
        if not pairs:
            return []
        m = self._mark
        which = " OR ".join([f"(e.user_id = {m} AND e.client_id = {m})"] * len(pairs))
        sql = (
            f"SELECT e.user_id, e.client_id, e.id, r.name, e.payload, {_DELETED} "
            f"FROM events e JOIN rooms r ON r.id = e.room_id "
            f"WHERE e.kind = 'message' AND ({which})"
        )
        params = tuple(x for pair in pairs for x in pair)
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        return [_sent(row) for row in rows]

    async def live_messages(self, message_ids: Sequence[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return {}
        marks = ", ".join([self._mark] * len(ids))
        sql = (
            f"SELECT e.id, r.name FROM events e JOIN rooms r ON r.id = e.room_id "
            f"WHERE e.id IN ({marks}) AND e.kind = 'message' AND NOT {_DELETED}"
        )
        rows = await self._read(lambda c: c.execute(sql, tuple(ids)).fetchall())
        return {row[0]: row[1] for row in rows}


def _sent(row: Sequence[Any]) -> SentMessage:
    user_id, client_id, message_id, room, payload, deleted = row
    _, attachments = unpack_payload(payload)
    return SentMessage(
        int(user_id), client_id, message_id, room, bool(deleted), tuple(a.id for a in attachments)
    )
