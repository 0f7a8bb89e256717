"""The SQLite writer's group commit: one transaction for every append and chore pending.

Each append takes the room's next seq (the writer is the only one assigning them, so its
cache of each room's last seq is authoritative), is checked (author rules of changes,
replies), inserted with its mentions and search index, and acked; a retried
(user, client_id) gets the original's ack. Chores (a membership, a read marker) ride
the same transaction instead of an fsync of their own.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from ..errors import Conflict, NotFound
from . import Ack, AppendRequest, Event, changes, mentions, new_id, now_ms
from . import sqlite_search as search


class Chore(NamedTuple):
    """A small write that rides the next group commit instead of a transaction (and an
    fsync) of its own: a membership, a read marker."""

    sql: str
    params: tuple[object, ...]


def commit_batch(
    conn: sqlite3.Connection, requests: list[AppendRequest | Chore], last_seq: dict[int, int]
) -> tuple[list[Ack | BaseException | None], list[Event], dict[int, int]]:
    """One group commit, in the writer's thread: every request of the batch in one
    transaction. Returns each request's result (an Ack, an error, None for a Chore), the
    new events in seq order, and each room's new last seq (`last_seq`, the writer's
    cache, is only read: the caller updates it when it publishes)."""
    seqs: dict[int, int] = {}
    wrote: dict[tuple[int, int], int] = {}
    results: list[Ack | BaseException | None] = []
    fresh: list[Event] = []
    ts = now_ms()
    conn.execute("BEGIN IMMEDIATE")
    try:
        for req in requests:
            if isinstance(req, Chore):
                try:  # a failed statement undoes only itself, not the transaction
                    conn.execute(req.sql, req.params)
                except sqlite3.IntegrityError:
                    results.append(Conflict("the write conflicts with stored data"))
                else:
                    results.append(None)
                continue
            room, user = req.room, req.user
            seq = seqs.get(room.id)
            if seq is None:
                seq = last_seq.get(room.id)
            if seq is None:
                found = conn.execute(
                    "SELECT last_seq FROM rooms WHERE id = ?", (room.id,)
                ).fetchone()
                if found is None:
                    results.append(NotFound("no such room"))
                    continue
                seq = found[0]
            mentioned: list[tuple[int, str]] = []
            if req.kind != "message":
                verdict = changes.check(conn.execute, "?", req)
                if verdict is not None:
                    results.append(verdict)
                    continue
            else:
                refused = mentions.check_reply(conn.execute, "?", req)
                if refused is not None:
                    results.append(refused)
                    continue
                mentioned = mentions.resolve(conn.execute, "?", req)
            seq += 1
            event_id = new_id()
            # One statement for the common case; the unique (user, client_id) index
            # makes a retry a no-op, and only then is the original looked up.
            inserted = conn.execute(
                "INSERT INTO events (room_id, seq, id, kind, user_id, client_id, ts, "
                "target_id, payload, reply_to, mentions) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id, client_id) DO NOTHING",
                (
                    room.id,
                    seq,
                    event_id,
                    req.kind,
                    user.id,
                    req.client_id,
                    ts,
                    req.target,
                    req.payload(),
                    req.reply_to,
                    mentions.joined(mentioned),
                ),
            ).rowcount
            if not inserted:
                results.append(_original(conn, req))
                continue
            if req.kind == "delete":
                changes.scrub(conn.execute, "?", req)
                search.forget(conn, req)
            elif req.kind == "message":
                search.index(conn, room.id, seq, req.text)
                conn.executemany(
                    "INSERT INTO mentions (user_id, room_id, seq) VALUES (?, ?, ?)",
                    [(uid, room.id, seq) for uid, _ in mentioned],
                )
            elif req.kind == "edit":
                search.reindex(conn, req)
            seqs[room.id] = seq
            results.append(Ack(room.name, req.client_id, event_id, seq, ts))
            wrote[room.id, user.id] = seq
            payload = req.payload()  # a delete's: "" or DELETED_BY_MODERATOR
            fresh.append(
                Event(
                    room.name,
                    event_id,
                    seq,
                    req.kind,
                    user.name,
                    req.client_id,
                    ts,
                    req.target,
                    payload,
                    reply_to=req.reply_to,
                    mentions=[name for _, name in mentioned],
                )
            )
        conn.executemany(
            "UPDATE rooms SET last_seq = ? WHERE id = ?",
            [(seq, room_id) for room_id, seq in seqs.items()],
        )
        # Whoever writes in a room has read it: their own messages are never unread.
        conn.executemany(
            "UPDATE members SET last_read = MAX(last_read, ?) WHERE room_id = ? AND user_id = ?",
            [(seq, room_id, user_id) for (room_id, user_id), seq in wrote.items()],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results, fresh, seqs


def _original(conn: sqlite3.Connection, req: AppendRequest) -> Ack | BaseException:
    """The ack of the message a retried (user, client_id) already stored."""
    row = conn.execute(
        "SELECT e.room_id, r.name, e.id, e.seq, e.ts FROM events e "
        "JOIN rooms r ON r.id = e.room_id WHERE e.user_id = ? AND e.client_id = ?",
        (req.user.id, req.client_id),
    ).fetchone()
    if row[0] != req.room.id:
        return changes.duplicate_elsewhere()
    return Ack(row[1], req.client_id, row[2], row[3], row[4])
