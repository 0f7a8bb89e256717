"""PostgreSQL-only: an outage is a StorageError (callers answer `unavailable`), and the
pool reconnects when the server is back."""

from __future__ import annotations

import pytest
import trio

from nochat.errors import StorageError
from nochat.store import Ack, AppendRequest, Room
from nochat.store.postgres import PostgresStore

from ..services_pg import PgServer

#: The server restarts and the pool reconnects within this bound.
RECOVERY_S = 30.0


@pytest.mark.slow
async def test_postgres_outage_is_a_storage_error_and_the_store_recovers(
    own_postgres: PgServer,
) -> None:
    store = PostgresStore(own_postgres.url(), pool_size=3)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(RECOVERY_S):
            await nursery.start(store.run)
        ann = await store.create_user("ann", "h")
        general = await store.room("general")
        assert isinstance(general, Room)
        await store.append(AppendRequest(general, ann, "before", "c1"))

        await trio.to_thread.run_sync(own_postgres.stop, "fast")  # loses no commit
        with trio.fail_after(RECOVERY_S):
            try:
                await store.room("general")
            except StorageError:
                pass
            else:
                raise AssertionError("a read with the server down did not fail")
            try:
                await store.append(AppendRequest(general, ann, "during", "c2"))
            except StorageError:
                pass
            else:
                raise AssertionError("an append with the server down did not fail")

        await trio.to_thread.run_sync(own_postgres.start)
        # Across a process boundary: poll, bounded, until the pool has reconnected.
        ack: Ack | None = None
        with trio.fail_after(RECOVERY_S):
            while ack is None:
                try:
                    ack = await store.append(AppendRequest(general, ann, "after", "c3"))
                except StorageError:
                    await trio.sleep(0.2)
        assert ack.seq == 2  # the failed append took no seq: still gapless
        history = await store.history(general, before=None, after=None, limit=10)
        assert [m.text for m in history] == ["before", "after"]
        store.close()
