"""A store that cannot be trusted says so: errors instead of short pages, /readyz red."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from nochat.store.pages import expected_seqs

from ..support import Api, HttpError, make_settings, start_server, ws_connect


async def _readyz(api: Api) -> tuple[int, object]:
    try:
        return 200, await api.get("/readyz")
    except HttpError as exc:
        return exc.status, exc.body


async def test_store_health_lost_rows_are_an_error_not_a_short_page(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "data")
    server = await start_server(nursery, settings)
    ann = await Api(server.http).signup("ann")
    async with ws_connect(server, ann.token) as a:
        for i in range(200):
            await a.say(f"m{i}")
        for _ in range(200):
            await a.expect("ack")
    await server.stop()
    # Damage quick_check cannot see (the b-tree stays well-formed) but a read does: rows
    # gone from the middle of the log, as when a page loses cells.
    conn = sqlite3.connect(settings.db_path)
    with conn:
        conn.execute("DELETE FROM events WHERE seq BETWEEN 78 AND 150")
    conn.close()
    server = await start_server(nursery, settings.replace(port=0))
    ann.base = server.http
    assert await _readyz(ann) == (200, {"status": "ready", "store": "ok"})
    for query in ("limit=200", "after=0&limit=200", "before=100&limit=50"):
        with pytest.raises(HttpError) as caught:
            await ann.get(f"/api/rooms/general/messages?{query}")
        assert caught.value.status == 503
        assert caught.value.body["error"]["code"] == "unavailable"
    intact = await ann.get("/api/rooms/general/messages?after=150&limit=50")
    assert [m["seq"] for m in intact["messages"]] == list(range(151, 200 + 1))
    assert await _readyz(ann) == (503, {"status": "unavailable", "store": "damaged"})


async def test_store_health_failing_writer_turns_readyz_red_until_it_commits_again(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "data")
    server = await start_server(nursery, settings)
    ann = await Api(server.http).signup("ann")
    # A real failure in the writer's transaction: the database refuses every insert.
    conn = sqlite3.connect(settings.db_path, isolation_level=None)
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'no'); END"
    )
    with pytest.raises(HttpError) as caught:
        await ann.post("/api/rooms/general/messages", {"text": "lost?", "client_id": "c1"})
    assert caught.value.status == 503
    assert await _readyz(ann) == (503, {"status": "unavailable", "store": "failed"})
    conn.execute("DROP TRIGGER refuse")
    conn.close()
    await ann.post("/api/rooms/general/messages", {"text": "kept", "client_id": "c2"})
    assert await _readyz(ann) == (200, {"status": "ready", "store": "ok"})


@pytest.mark.parametrize(
    ("head", "before", "after", "limit", "want"),
    [
        (10, None, None, 3, [8, 9, 10]),
        (10, 5, None, 10, [1, 2, 3, 4]),
        (10, 1, None, 10, []),
        (10, None, 0, 4, [1, 2, 3, 4]),
        (10, None, 8, 4, [9, 10]),
        (10, None, 12, 4, []),
        (0, None, None, 50, []),
    ],
)
def test_store_health_expected_page(
    head: int, before: int | None, after: int | None, limit: int, want: list[int]
) -> None:
    assert list(expected_seqs(head=head, before=before, after=after, limit=limit)) == want
