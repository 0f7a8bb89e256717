"""Starting `nochat serve` for one run: a free port, a fresh data dir, pinned to core 0."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, Self

from . import procstat, rest

#: Settings every bench server gets unless a scenario overrides them.
BASE_ENV = {
    "NOCHAT_PASSWORD_HASHING": "fast",
    "NOCHAT_LOG_LEVEL": "WARNING",
    # The bench measures the server's capacity, not its abuse limits: lift them all.
    "NOCHAT_SEND_RATE_PER_S": "1000000",
    "NOCHAT_SEND_BURST": "1000000",
    "NOCHAT_FRAME_RATE_PER_S": "1000000",
    "NOCHAT_FRAME_BURST": "1000000",
    "NOCHAT_JOIN_RATE_PER_S": "1000000",
    "NOCHAT_JOIN_BURST": "1000000",
    "NOCHAT_MAX_CONNECTIONS": "100000",
    "NOCHAT_MAX_CONNECTIONS_PER_USER": "1000",
    # Every bench user signs up from 127.0.0.1.
    "NOCHAT_SIGNUP_RATE_PER_H": "1000000",
    # loadgen's idle mode dials all 10,000 sockets before any joins: with the default
    # 10 s for a first frame, the first sockets were closed 4002 while later ones were
    # still connecting (joined=977 of 10,000 on a loaded machine).
    "NOCHAT_FIRST_FRAME_TIMEOUT_S": "300",
}
#: Where `python -m nochat` is run from (its `nochat/` package is the one served).
ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


#: The cores this process could use when first imported, before `python -m bench` pins
#: itself to the generator's core: read later, the affinity would say only that core, and
#: the server would inherit it (earlier runs did exactly that: server and generator
#: shared core 1 while core 0 served other work).
_START_CORES: Final = tuple(sorted(os.sched_getaffinity(0)))


def cores() -> list[int]:
    return list(_START_CORES)


def server_core() -> int | None:
    """Core 0 when the machine has at least two, else None (no pinning)."""
    return cores()[0] if len(cores()) >= 2 else None


def generator_cores() -> set[int]:
    c = cores()
    return set(c[1:]) if len(c) >= 2 else set(c)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin_preexec(core: int | None) -> None:
    """Runs in a child between fork and exec: pin it to `core` and lift its fd limit."""
    if core is not None:
        os.sched_setaffinity(0, {core})
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """`with Server(env) as srv:` runs one nochat server; `srv.pid`, `srv.port`, `srv.sample()`.

    `args` are more `nochat serve` flags (e.g. `--workers 2`: then `srv.pid` is the
    supervisor and `srv.pids()` lists it and its workers)."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        src: Path | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.env_overrides = {**BASE_ENV, **(env or {})}
        self.args = list(args)
        self.python = python
        self.src = src or Path(os.environ.get("NOCHAT_BENCH_SERVER_SRC") or ROOT)
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="nochat-bench-"))
        self.log_path = self.tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        env = {**os.environ, **self.env_overrides}
        cmd = [
            self.python,
            "-m",
            "nochat",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.tmp / "data"),
            *self.args,
        ]
        core = server_core()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=lambda: pin_preexec(core),
                cwd=self.src,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if rest.healthy(self.port):
                if core is not None and os.sched_getaffinity(self.proc.pid) != {core}:
                    raise RuntimeError(f"server not pinned to core {core}")
                return
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy within {STARTUP_TIMEOUT_S} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> list[int]:
        """This server's process and its children (the workers of `--workers N`)."""
        return [self.pid, *procstat.children(self.pid)]

    def sample(self) -> procstat.ProcSample:
        return procstat.sample(self.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)
