"""PostgreSQL full-text search over the room log (Store.search on the shared store).

A GIN index on `to_tsvector('simple', payload)` of the message and edit rows (schema
version 2) finds candidates; a row counts only while it is its message's current text
(the message with no later edit, or its latest edit) and the message is not deleted.
A delete blanks the rows' text (changes.scrub), so a deleted message's words are no
longer in the index either. 'simple' splits and lower-cases without stemming, like
SQLite's unicode61 tokenizer, so both stores find the same messages for the same words.
"""

from __future__ import annotations

from . import SNIPPET_CLOSE, SNIPPET_OPEN, SearchHit
from .log_queries import AUTHOR
from .postgres_directory import Conn

MIGRATION: list[str] = [
    "CREATE INDEX events_search ON events USING GIN (to_tsvector('simple', payload)) "
    "WHERE kind IN ('message', 'edit')",
]

#: ts_headline's excerpt of 8 to 24 words around the match (no elision mark: it does
#: not add one outside fragment mode, whose fragments drop words of short texts).
_HEADLINE = f"StartSel={SNIPPET_OPEN}, StopSel={SNIPPET_CLOSE}, MaxWords=24, MinWords=8"


#: A row's text: a message with files stores U+0001 and JSON (store.pack_payload).
_TEXT = (
    "CASE WHEN left(x.payload, 1) = chr(1) "
    "THEN (substr(x.payload, 2)::jsonb ->> 'text') ELSE x.payload END"
)


def search(
    conn: Conn, user_id: int, q: str, *, room_id: int | None, before: str | None, limit: int
) -> list[SearchHit]:
    sql = (
        f"SELECT r.name, m.seq, m.id, {AUTHOR}, {_TEXT}, "
        f"ts_headline('simple', {_TEXT}, q, %s), m.ts "
        "FROM events x CROSS JOIN plainto_tsquery('simple', %s) AS q "
        "JOIN events m ON m.id = COALESCE(x.target_id, x.id) AND m.kind = 'message' "
        "JOIN rooms r ON r.id = m.room_id JOIN users u ON u.id = m.user_id "
        "WHERE x.kind IN ('message', 'edit') AND to_tsvector('simple', x.payload) @@ q "
        # The index finds candidates; a packed payload must match on its text alone.
        f"AND (left(x.payload, 1) <> chr(1) OR to_tsvector('simple', {_TEXT}) @@ q) "
        "AND NOT EXISTS (SELECT 1 FROM events d WHERE d.target_id = m.id "
        "AND d.kind = 'delete') "
        "AND NOT EXISTS (SELECT 1 FROM events y WHERE y.target_id = m.id "
        "AND y.kind = 'edit' AND y.seq > x.seq) "
        "AND (NOT r.private OR EXISTS (SELECT 1 FROM members mm WHERE mm.room_id = r.id "
        "AND mm.user_id = %s))"
    )
    params: list[object] = [_HEADLINE, q, user_id]
    if room_id is not None:
        sql += " AND r.id = %s"
        params.append(room_id)
    if before is not None:
        sql += " AND m.id < %s"
        params.append(before)
    sql += " ORDER BY m.id DESC LIMIT %s"
    params.append(limit)
    return [SearchHit(*row) for row in conn.execute(sql, params).fetchall()]
