"""Real redis-server and PostgreSQL for the scale-out scenarios: free ports on 127.0.0.1,
temporary directories, pinned to the server's core, stopped (by PID) at the end.

The test suite's starters (tests/services_redis.py, tests/services_pg.py) are Trio and
pytest fixtures; the bench orchestrator is plain blocking code, so these are its own
small equivalents, started the same way. PostgreSQL runs with its durable defaults
(fsync, synchronous_commit on), like SQLite's synchronous=FULL on the other side of the
comparison; the tests' server turns fsync off.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from . import procstat
from .server import free_port, pin_preexec, server_core

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class ServiceUnavailable(RuntimeError):
    """The program is not installed here (the scenario is skipped, with this reason)."""


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:  # polling across a process boundary, bounded
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {STARTUP_TIMEOUT_S} s")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Redis:
    """`with Redis() as r:` a redis-server (no persistence) on `r.url`; `r.pid`."""

    def __init__(self) -> None:
        program = shutil.which("redis-server")
        if program is None:
            raise ServiceUnavailable("redis-server is not installed")
        self.program = program
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="nochat-bench-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Self:
        core = server_core()
        self.proc = subprocess.Popen(
            [self.program, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: pin_preexec(core),
        )  # fmt: skip
        try:
            _wait_port(self.port, self.proc, "redis-server")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        _stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class Postgres:
    """`with Postgres() as pg:` a fresh cluster (run as `postgres` when we are root) with
    one database `nochat` on `pg.url`; `pg.pids()` lists the postmaster and its backends."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = found[-1] if found else shutil.which("initdb")
        if initdb is None:
            raise ServiceUnavailable("PostgreSQL (initdb) is not installed")
        self.bin = Path(initdb).parent
        self.root = Path(tempfile.mkdtemp(prefix="nochat-bench-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.runas: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.runas = ["runuser", "-u", "postgres", "--"]
        self.started = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/nochat"

    def _run(self, program: str, *args: str) -> None:
        core = server_core()
        done = subprocess.run(
            [*self.runas, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT_S + 30,
            preexec_fn=lambda: pin_preexec(core),
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stdout}\n{done.stderr}")

    def __enter__(self) -> Self:
        try:
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "-E", "UTF8", "--no-instructions")  # fmt: skip
            options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root}"
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"),
                      "-o", options, "-w", "-t", str(int(STARTUP_TIMEOUT_S)), "start")  # fmt: skip
            self.started = True
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                      "nochat")  # fmt: skip
        except BaseException:
            self.__exit__()
            raise
        return self

    def pids(self) -> list[int]:
        """The postmaster (first line of postmaster.pid) and every child of it."""
        try:
            master = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [master, *procstat.children(master)]

    def __exit__(self, *exc: object) -> None:
        if self.started:
            with contextlib.suppress(RuntimeError):  # already down: the directory goes anyway
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)
