"""The PostgreSQL backup docs/DEPLOY.md shows: pg_dump while clients send, pg_restore into
a new database, a new epoch, a node started on it has every acked message."""

from __future__ import annotations

from pathlib import Path

import trio

from ..services_pg import PgServer
from ..support import STEP_S, Api, make_settings, require_program, start_server, ws_connect
from .test_backup import history_ids

#: Messages acked before pg_dump starts (the sender goes on while it runs).
BEFORE_BACKUP = 60
#: The epoch statement docs/DEPLOY.md gives (a test keeps them the same).
NEW_EPOCH_SQL = "UPDATE meta SET value = md5(random()::text) WHERE key = 'epoch'"


async def test_pg_dump_while_sending_then_pg_restore_keeps_every_acked_message(
    nursery: trio.Nursery, tmp_path: Path, pg_url: str, postgres_server: PgServer
) -> None:
    pg_dump, pg_restore = require_program("pg_dump"), require_program("pg_restore")
    psql = require_program("psql")
    assert NEW_EPOCH_SQL in (Path(__file__).parents[2] / "docs" / "DEPLOY.md").read_text()
    server = await start_server(nursery, make_settings(tmp_path / "a", database_url=pg_url))
    alice = await Api(server.http).signup("alice")
    acked: list[str] = []
    enough, stop = trio.Event(), trio.Event()

    async def sender(task_status: trio.TaskStatus[None]) -> None:
        async with ws_connect(server, alice.token) as ws:
            await ws.join()
            task_status.started()
            n = 0
            while not stop.is_set():
                ack = await ws.expect("ack", client_id=await ws.say(f"m{n}"))
                acked.append(ack["id"])
                n += 1
                if len(acked) >= BEFORE_BACKUP:
                    enough.set()

    dump = tmp_path / "nochat.dump"
    async with trio.open_nursery() as senders:
        await senders.start(sender)
        await enough.wait()
        acked_before = set(acked)
        with trio.fail_after(STEP_S * 3):
            await trio.run_process([pg_dump, "--format=custom", f"--file={dump}", pg_url])
        stop.set()
    old_epoch = server.services.store.epoch
    await server.stop()

    restored = postgres_server.create_database()
    try:
        with trio.fail_after(STEP_S * 3):
            await trio.run_process([pg_restore, "--no-owner", f"--dbname={restored}", str(dump)])
            await trio.run_process([psql, restored, "-q", "-c", NEW_EPOCH_SQL])
        again = await start_server(nursery, make_settings(tmp_path / "b", database_url=restored))
        # The token secret lives in the database: a session from before still works.
        seqs, ids, epoch = await history_ids(Api(again.http, alice.token))
        assert acked_before <= ids
        assert seqs == list(range(1, len(seqs) + 1))
        assert epoch != old_epoch
        await again.stop()
    finally:
        postgres_server.drop_database(restored)
