"""Shared fixtures: a real NoChat server per test, on port 0, in a temporary data dir."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from .support import Api, RunningServer, start_server, make_settings


@pytest.fixture
async def server(nursery: trio.Nursery, tmp_path: Path) -> RunningServer:
    return await start_server(nursery, make_settings(tmp_path / "data"))


@pytest.fixture
def api(server: RunningServer) -> Api:
    return Api(server.http)
