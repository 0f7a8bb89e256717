"""Shared fixtures: a real NoChat server per test, on port 0, in a temporary data dir."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from .services_pg import own_postgres, pg_url, postgres_server
from .support import Api, RunningServer, make_settings, start_server

__all__ = ["own_postgres", "pg_url", "postgres_server"]  # fixtures for every test module


@pytest.fixture
async def server(nursery: trio.Nursery, tmp_path: Path) -> RunningServer:
    return await start_server(nursery, make_settings(tmp_path / "data"))


@pytest.fixture(params=[True, False], ids=["direct", "write-pump-only"])
async def both_paths_server(
    request: pytest.FixtureRequest, nursery: trio.Nursery, tmp_path: Path
) -> RunningServer:
    """A server with the direct send path on, then off: both must behave the same."""
    return await start_server(nursery, make_settings(tmp_path / "data", direct_send=request.param))


@pytest.fixture
def api(server: RunningServer) -> Api:
    return Api(server.http)


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after each test, so a leaked socket's ResourceWarning names its own test."""
    yield
    gc.collect()
