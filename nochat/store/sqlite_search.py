"""SQLite full-text search: an FTS5 table kept in step with the room log by the writer.

`search_fts` holds each live message's current text under the rowid
`room_id << SEQ_BITS | seq` (the events table has no rowid of its own), so an edit
replaces one row and a delete removes it, in the commit's own transaction. FTS5 keeps
a deleted row's terms in its index segments until they are merged: a delete therefore
also runs FTS5's `optimize`, which rewrites the index without them, so no word of a
deleted message is left in the file (tests/store/test_chat_store.py reads the file).
"""

from __future__ import annotations

import sqlite3

from . import SNIPPET_CLOSE, SNIPPET_ELLIPSIS, SNIPPET_OPEN, AppendRequest, SearchHit
from .log_queries import AUTHOR

#: Bits of the FTS rowid that hold the seq (2**40 messages per room).
SEQ_BITS = 40

MIGRATION: list[str] = [
    "CREATE VIRTUAL TABLE search_fts USING fts5(text, tokenize = 'unicode61 remove_diacritics 2')",
    f"INSERT INTO search_fts (rowid, text) SELECT (room_id << {SEQ_BITS}) | seq, payload "
    "FROM events e WHERE kind = 'message' AND NOT EXISTS (SELECT 1 FROM events d "
    "WHERE d.target_id = e.id AND d.kind = 'delete')",
]


#: A deleted room's messages leave the index (its id the one parameter).
FORGET_ROOM = (
    f"DELETE FROM search_fts WHERE rowid >= (?1 << {SEQ_BITS}) AND rowid < ((?1 + 1) << {SEQ_BITS})"
)


def index(conn: sqlite3.Connection, room_id: int, seq: int, text: str) -> None:
    conn.execute(
        "INSERT INTO search_fts (rowid, text) VALUES (?, ?)", ((room_id << SEQ_BITS) | seq, text)
    )


def _rowid(conn: sqlite3.Connection, req: AppendRequest) -> int | None:
    row = conn.execute(
        "SELECT seq FROM events WHERE id = ? AND room_id = ?", (req.target, req.room.id)
    ).fetchone()
    return None if row is None else (req.room.id << SEQ_BITS) | int(row[0])


def reindex(conn: sqlite3.Connection, req: AppendRequest) -> None:
    """An edit: the message is found by its new text only."""
    rowid = _rowid(conn, req)
    if rowid is not None:
        conn.execute("DELETE FROM search_fts WHERE rowid = ?", (rowid,))
        conn.execute("INSERT INTO search_fts (rowid, text) VALUES (?, ?)", (rowid, req.text))


def forget(conn: sqlite3.Connection, req: AppendRequest) -> None:
    """A delete: the message's row goes, and its terms leave the index (optimize)."""
    rowid = _rowid(conn, req)
    if rowid is not None:
        conn.execute("DELETE FROM search_fts WHERE rowid = ?", (rowid,))
        conn.execute("INSERT INTO search_fts (search_fts) VALUES ('optimize')")


def match_query(q: str) -> str:
    """The user's words as an FTS5 query: each a quoted phrase (no FTS5 syntax gets through),
    all required."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in q.split())


def search(
    conn: sqlite3.Connection,
    user_id: int,
    q: str,
    *,
    room_id: int | None,
    before: str | None,
    limit: int,
) -> list[SearchHit]:
    """The search (Store.search) over search_fts: FTS5 finds, the log and membership judge."""
    mask = (1 << SEQ_BITS) - 1
    sql = (
        f"SELECT r.name, e.seq, e.id, {AUTHOR}, f.text, "
        f"snippet(search_fts, 0, '{SNIPPET_OPEN}', '{SNIPPET_CLOSE}', '{SNIPPET_ELLIPSIS}', 16), "
        "e.ts FROM search_fts f "
        f"JOIN events e ON e.room_id = (f.rowid >> {SEQ_BITS}) AND e.seq = (f.rowid & {mask}) "
        "JOIN rooms r ON r.id = e.room_id JOIN users u ON u.id = e.user_id "
        "WHERE search_fts MATCH ? AND (r.private = 0 OR EXISTS (SELECT 1 FROM members m "
        "WHERE m.room_id = r.id AND m.user_id = ?))"
    )
    params: list[object] = [match_query(q), user_id]
    if room_id is not None:
        sql += " AND r.id = ?"
        params.append(room_id)
    if before is not None:
        sql += " AND e.id < ?"
        params.append(before)
    sql += " ORDER BY e.id DESC LIMIT ?"
    params.append(limit)
    return [SearchHit(*row) for row in conn.execute(sql, params).fetchall()]
