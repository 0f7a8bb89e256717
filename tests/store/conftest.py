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


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "db.sqlite3"
        return Backend("sqlite", lambda: SQLiteStore(path))
    return _postgres(request.getfixturevalue("pg_url"))


@pytest.fixture
def shared_backend(pg_url: str) -> Backend:
    """The backends where several instances (nodes) write one database at once."""
    return _postgres(pg_url)


def _postgres(url: str) -> Backend:
    return Backend("postgres", lambda: PostgresStore(url, pool_size=4))


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    async with trio.open_nursery() as nursery:
        s = backend.make()
        with trio.fail_after(30):
            await nursery.start(s.run)
        yield s
        s.close()
