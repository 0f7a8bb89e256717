"""One batch of appends in one PostgreSQL transaction: the seqs, the rows, the acks.

Seqs come from `UPDATE rooms SET head_seq = head_seq + n … RETURNING head_seq` in the
transaction that inserts the rows they number: the row lock makes another node's batch
for the room wait until this one ends, so seqs are gapless across nodes. Rooms are
taken in id order, so two nodes' batches cannot deadlock. A retry is found before any
seq is taken; a retry racing on another node (its row not yet committed when we
looked) is caught by ON CONFLICT DO NOTHING, and then the batch raises `Raced` to be
rolled back and run again, rather than leave the seq it took unused.

Changes (edit, delete, reaction; changes.py has their rules) follow the batch's
messages in the same transaction, one by one, each taking the room's next seq: the
rooms of the whole batch are locked first, in id order, so the rules read a room no
other node is writing, and a change may target a message of its own batch.
"""

from __future__ import annotations

from ..errors import NotFound, StorageError
from . import Ack, AppendRequest, Event, changes, mentions, new_id, now_ms
from .postgres_directory import Conn


class Raced(Exception):
    """Another node stored one of this batch's (user, client_id) meanwhile: run it again."""


def append_batch(
    conn: Conn, requests: list[AppendRequest]
) -> tuple[list[Ack | BaseException], list[Event]]:
    """One batch in the caller's transaction: each request's result, and the new events."""
    conn.execute(
        "SELECT id FROM rooms WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
        (sorted({r.room.id for r in requests}),),
    )
    messages = [i for i, r in enumerate(requests) if r.kind == "message"]
    results, fresh = _append_messages(conn, [requests[i] for i in messages])
    outcome: list[Ack | BaseException | None] = [None] * len(requests)
    for i, result in zip(messages, results, strict=True):
        outcome[i] = result
    for i, req in enumerate(requests):
        if req.kind != "message":
            outcome[i] = _append_change(conn, req, fresh)
    return [r if r is not None else StorageError("append lost") for r in outcome], fresh


def _append_change(conn: Conn, req: AppendRequest, fresh: list[Event]) -> Ack | BaseException:
    verdict = changes.check(conn.execute, "%s", req)
    if verdict is not None:
        return verdict
    head = conn.execute(
        "UPDATE rooms SET head_seq = head_seq + 1 WHERE id = %s RETURNING head_seq",
        (req.room.id,),
    ).fetchone()
    if head is None:
        return NotFound("no such room")
    seq, event_id, ts = int(head[0]), new_id(), now_ms()
    inserted = conn.execute(
        "INSERT INTO events (room_id, seq, id, kind, user_id, client_id, ts, target_id, "
        "payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (user_id, client_id) DO NOTHING RETURNING 1",
        (
            req.room.id,
            seq,
            event_id,
            req.kind,
            req.user.id,
            req.client_id,
            ts,
            req.target,
            req.text,
        ),
    ).fetchall()
    if not inserted:
        raise Raced
    if req.kind == "delete":
        changes.scrub(conn.execute, "%s", req)
    payload = req.text  # a delete's: "" or DELETED_BY_MODERATOR
    fresh.append(
        Event(
            req.room.name,
            event_id,
            seq,
            req.kind,
            req.user.name,
            req.client_id,
            ts,
            req.target,
            payload,
        )
    )
    return Ack(req.room.name, req.client_id, event_id, seq, ts)


def _append_messages(
    conn: Conn, requests: list[AppendRequest]
) -> tuple[list[Ack | BaseException], list[Event]]:
    if not requests:
        return [], []
    keys = [(r.user.id, r.client_id) for r in requests]
    originals: dict[tuple[int, str], tuple[int, Ack]] = {}
    for user_id, client_id, room_id, room, event_id, seq, ts in conn.execute(
        "SELECT e.user_id, e.client_id, e.room_id, r.name, e.id, e.seq, e.ts FROM events e "
        "JOIN rooms r ON r.id = e.room_id "
        "WHERE (e.user_id, e.client_id) IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))",
        ([k[0] for k in keys], [k[1] for k in keys]),
    ):
        originals[user_id, client_id] = (room_id, Ack(room, client_id, event_id, seq, ts))
    results: list[Ack | BaseException | None] = [None] * len(requests)
    writer: dict[tuple[int, str], int] = {}  # key → the request in this batch that writes it
    by_room: dict[int, list[int]] = {}
    repeats: list[int] = []
    for i, (req, key) in enumerate(zip(requests, keys, strict=True)):
        if key in originals:
            results[i] = _retried(req, *originals[key])
        elif key in writer:
            repeats.append(i)
        elif (refused := mentions.check_reply(conn.execute, "%s", req)) is not None:
            results[i] = refused
        else:
            writer[key] = i
            by_room.setdefault(req.room.id, []).append(i)
    ts = now_ms()
    rows: list[tuple[int, int, str, int, str, str, str | None, str]] = []
    mention_rows: list[tuple[int, int, int]] = []
    fresh: list[Event] = []
    for room_id in sorted(by_room):
        indices = by_room[room_id]
        head = conn.execute(
            "UPDATE rooms SET head_seq = head_seq + %s WHERE id = %s RETURNING head_seq",
            (len(indices), room_id),
        ).fetchone()
        if head is None:
            for i in indices:
                results[i] = NotFound("no such room")
            continue
        for seq, i in enumerate(indices, start=int(head[0]) - len(indices) + 1):
            req, event_id = requests[i], new_id()
            mentioned = mentions.resolve(conn.execute, "%s", req)
            mention_rows.extend((uid, room_id, seq) for uid, _ in mentioned)
            rows.append(
                (
                    room_id,
                    seq,
                    event_id,
                    req.user.id,
                    req.client_id,
                    req.payload(),
                    req.reply_to,
                    mentions.joined(mentioned),
                )
            )
            results[i] = Ack(req.room.name, req.client_id, event_id, seq, ts)
            fresh.append(
                Event(
                    req.room.name,
                    event_id,
                    seq,
                    "message",
                    req.user.name,
                    req.client_id,
                    ts,
                    None,
                    req.payload(),
                    reply_to=req.reply_to,
                    mentions=[name for _, name in mentioned],
                )
            )
    if rows:
        columns = (list(col) for col in zip(*rows, strict=True))
        room_ids, seqs, ids, user_ids, client_ids, texts, replies, names = columns
        inserted = conn.execute(
            "INSERT INTO events (room_id, seq, id, kind, user_id, client_id, ts, target_id, "
            "payload, reply_to, mentions) SELECT v.room_id, v.seq, v.id, 'message', v.user_id, "
            "v.client_id, %s, NULL, v.payload, v.reply_to, v.mentions FROM unnest(%s::bigint[], "
            "%s::bigint[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[], "
            "%s::text[]) AS v(room_id, seq, id, user_id, client_id, payload, reply_to, mentions) "
            "ON CONFLICT (user_id, client_id) DO NOTHING RETURNING 1",
            (ts, room_ids, seqs, ids, user_ids, client_ids, texts, replies, names),
        ).fetchall()
        if len(inserted) != len(rows):
            raise Raced
        if mention_rows:
            conn.cursor().executemany(
                "INSERT INTO mentions (user_id, room_id, seq) VALUES (%s, %s, %s)", mention_rows
            )
        # Whoever writes in a room has read it: their own messages are never unread.
        conn.execute(
            "UPDATE members m SET last_read = GREATEST(m.last_read, v.seq) "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(room_id, user_id, seq) "
            "WHERE m.room_id = v.room_id AND m.user_id = v.user_id",
            (room_ids, user_ids, seqs),
        )
    for i in repeats:  # the same (user, client_id) twice in one batch: the first's ack
        req, first = requests[i], results[writer[keys[i]]]
        results[i] = (
            first
            if not isinstance(first, Ack) or first.room == req.room.name
            else changes.duplicate_elsewhere()
        )
    return [r if r is not None else StorageError("append lost") for r in results], fresh


def _retried(req: AppendRequest, room_id: int, original: Ack) -> Ack | BaseException:
    if room_id != req.room.id:
        return changes.duplicate_elsewhere()
    return original
