"""A real PostgreSQL for tests: one server per session, a fresh database per test.

The Debian binaries live in /usr/lib/postgresql/<version>/bin (not on PATH). PostgreSQL
refuses to run as root, so when the tests run as root the server runs as `postgres`
(with `runuser`), in a temporary directory that user owns, on a free port on 127.0.0.1
with its socket in that directory, fsync off. Missing binaries skip the tests, or fail
them under NOCHAT_REQUIRE_SERVICES=1 (support.require_program).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from .support import require_program

#: pg_ctl start/stop waits at most this long (seconds).
PG_CTL_WAIT_S = 30


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(require_program(found[-1] if found else "initdb")).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in a temporary directory; `stop()`/`start()` for outages."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="nochat-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = [require_program("runuser"), "-u", "postgres", "--"]
        self._names = itertools.count(1)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync", "--no-instructions")  # fmt: skip

    def _run(self, program: str, *args: str) -> None:
        cmd = [*self._as, str(self.bin / program), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PG_CTL_WAIT_S + 30)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stdout}\n{done.stderr}")

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options,
                  "-w", "-t", str(PG_CTL_WAIT_S), "start")  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # a generated name, no input
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_url(postgres_server: PgServer) -> Iterator[str]:
    """The URL of a fresh database on the session's PostgreSQL, dropped afterwards."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture
def own_postgres() -> Iterator[PgServer]:
    """A PostgreSQL of this test's own (started), for tests that stop and restart it."""
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()
