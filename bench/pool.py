"""The orchestrator's side of the worker pipe: start workers pinned to the generator core,
send them a command each, collect one JSON reply from each."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from .server import generator_cores


def _worker_preexec(cores: set[int]) -> None:
    os.sched_setaffinity(0, cores)


class WorkerError(RuntimeError):
    """A worker died or replied with something unreadable."""


class Pool:
    """`with Pool(n, port) as pool:` — n worker processes, each a `bench.worker`.

    `port` may be one port per worker (clients of different nodes of one cluster)."""

    def __init__(self, count: int, port: int | Sequence[int]) -> None:
        self.count = count
        self.ports = [port] * count if isinstance(port, int) else list(port)
        if len(self.ports) != count:
            raise ValueError(f"{count} workers, {len(self.ports)} ports")
        self.procs: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Self:
        gen = generator_cores()
        root = Path(__file__).resolve().parent.parent
        try:
            for wid in range(self.count):
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bench.worker", str(wid), str(self.ports[wid])],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                        preexec_fn=lambda: _worker_preexec(gen),
                        cwd=root,
                    )
                )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def send(self, wid: int, cmd: str, **args: Any) -> None:
        proc = self.procs[wid]
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        proc.stdin.flush()

    def recv(self, wid: int) -> dict[str, Any]:
        proc = self.procs[wid]
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise WorkerError(f"worker {wid} exited with {proc.wait()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def all(
        self, cmd: str, per_worker: list[dict[str, Any]] | None = None, **args: Any
    ) -> list[dict[str, Any]]:
        """Send `cmd` to every worker (with its own args from `per_worker`), gather the replies."""
        for wid in range(self.count):
            extra = per_worker[wid] if per_worker else {}
            self.send(wid, cmd, **args, **extra)
        return [self.recv(wid) for wid in range(self.count)]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None and proc.stdin is not None:
                with contextlib.suppress(OSError):  # a dead worker's pipe is already closed
                    proc.stdin.write('{"cmd": "quit"}\n')
                    proc.stdin.flush()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
