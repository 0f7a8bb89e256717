"""Hold a NoChat server's writes from outside its process, to crash it at a chosen step.

A test takes the room log's write lock (the server's next append waits), then the file
catalogue's (its next claim, bind, unclaim or removal waits), from its own connection
to the server's database(s): SQLite's `BEGIN IMMEDIATE` on `nochat.sqlite3` and
`files.sqlite3` (the server waits up to its busy timeout, 5 s), or PostgreSQL's row
lock on the room and `LOCK TABLE files`. Killed (kill -9) while a change waits, the
server never makes it: exactly the crash between the room log's commit and the file
change that follows it. With PostgreSQL the dead server's sessions are ended before the
locks go (a session waiting on a lock does not notice its client has gone, and would
make the change after all).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import trio

from .support import STEP_S, ServerProcess

#: How often a test polls the server's database across the process boundary.
POLL_S = 0.02


class Hold:
    """One lock held on its own connection until `release()`."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release

    async def release(self) -> None:
        await trio.to_thread.run_sync(self._release)


class WriteHolds:
    """The server's storage as seen from outside: `env` starts a server on it."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.data_dir = data_dir
        self.url = database_url
        self.env: dict[str, str] = {"database_url": database_url} if database_url else {}
        self._pids: list[int] = []

    # ---- locks ---------------------------------------------------------------------------

    async def hold_log(self) -> Hold:
        """The room log: appends wait (claims, being file writes, do not)."""
        if self.url is None:
            return await self._sqlite_hold("nochat.sqlite3")
        return await self._pg_hold("SELECT 1 FROM rooms WHERE name = 'general' FOR UPDATE")

    async def hold_files(self) -> Hold:
        """The file catalogue: claims, binds, unclaims and removals wait (reads do not)."""
        if self.url is None:
            return await self._sqlite_hold("files.sqlite3")
        return await self._pg_hold("LOCK TABLE files IN EXCLUSIVE MODE")

    async def _sqlite_hold(self, name: str) -> Hold:
        def take() -> Hold:
            conn = sqlite3.connect(
                self.data_dir / name, isolation_level=None, timeout=STEP_S, check_same_thread=False
            )
            conn.execute("BEGIN IMMEDIATE")

            def release() -> None:
                conn.execute("ROLLBACK")
                conn.close()

            return Hold(release)

        return await trio.to_thread.run_sync(take)

    async def _pg_hold(self, sql: str) -> Hold:
        assert self.url is not None
        url = self.url

        def take() -> Hold:
            conn = psycopg.connect(url)  # a transaction from the first statement
            conn.execute(sql)
            pid = conn.info.backend_pid
            self._pids.append(pid)

            def release() -> None:
                conn.rollback()
                conn.close()
                self._pids.remove(pid)

            return Hold(release)

        return await trio.to_thread.run_sync(take)

    async def crash(self, node: ServerProcess) -> None:
        """kill -9 the server; with PostgreSQL, end its sessions (and their waiting writes)."""
        node.process.kill()
        with trio.fail_after(STEP_S):
            await node.process.wait()
        if self.url is not None:
            await self._query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND NOT pid = ANY({m})",
                (self._pids,),
            )

    # ---- what the server stored ----------------------------------------------------------

    async def file_row(self, file_id: str) -> tuple[Any, ...] | None:
        """(attached_to, message_id, sha256, thumb_sha256) of a file record."""
        rows = await self._query(
            "SELECT attached_to, message_id, sha256, thumb_sha256 FROM files WHERE id = {m}",
            (file_id,),
        )
        return rows[0] if rows else None

    async def blob_exists(self, sha256: str) -> bool:
        if self.url is None:
            return (self.data_dir / "blobs" / sha256[:2] / sha256).exists()
        return bool(await self._query("SELECT 1 FROM blobs WHERE sha256 = {m}", (sha256,)))

    async def wait_for(self, check: Callable[[], Any], within_s: float = STEP_S * 2) -> None:
        """Poll the server's storage (another process: no event to wait on) until `check`
        (an async callable) is true; fail after `within_s`."""
        with trio.fail_after(within_s):
            while not await check():  # noqa: ASYNC110 (another process: no trio.Event)
                await trio.sleep(POLL_S)

    async def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """One query on the server's database (SQLite: its file catalogue); mark `{m}`."""
        url = self.url

        def run() -> list[tuple[Any, ...]]:
            if url is None:
                conn = sqlite3.connect(self.data_dir / "files.sqlite3")
                try:
                    return conn.execute(sql.format(m="?"), params).fetchall()
                finally:
                    conn.close()
            with psycopg.connect(url, autocommit=True) as pg:
                return pg.execute(sql.format(m="%s"), params).fetchall()

        return await trio.to_thread.run_sync(run)
