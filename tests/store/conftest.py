"""The contract suite's backends: every test in tests/store/test_contract.py runs on each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from nochat.store import Store
from nochat.store.postgres import PostgresStore
from nochat.store.sqlite import SQLiteStore


@dataclass
class Backend:
    """Makes store instances on one database: a second one is a second node (or a restart)."""

    name: str
    make: Callable[[], Store]
    #: Several instances may write the database at once (SQLite: one process per file).
    shared: bool


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "db.sqlite3"
        return Backend("sqlite", lambda: SQLiteStore(path), shared=False)
    url: str = request.getfixturevalue("pg_url")
    return Backend("postgres", lambda: PostgresStore(url, pool_size=4), shared=True)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    async with trio.open_nursery() as nursery:
        s = backend.make()
        with trio.fail_after(30):
            await nursery.start(s.run)
        yield s
        s.close()
