"""A real redis-server for tests: its own free port on 127.0.0.1 and temp dir, stopped at
the end; it can be stopped and restarted mid-test, and its pub/sub clients cut off."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio
import trio.lowlevel

from .support import STEP_S, require_program


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    program: str
    directory: Path
    port: int
    process: trio.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start redis-server and return once it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = await trio.lowlevel.open_process(
            [
                self.program,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        with trio.fail_after(STEP_S):
            while True:  # polling across a process boundary, bounded
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}")
                try:
                    if await self.command("PING") == "+PONG":
                        return
                except OSError:
                    pass
                await trio.sleep(0.02)

    async def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            with trio.fail_after(STEP_S):
                await self.process.wait()
            self.process = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def command(self, *args: str) -> str:
        """One command over a fresh connection; the first line of the reply."""
        payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        with trio.fail_after(STEP_S):
            stream = await trio.open_tcp_stream("127.0.0.1", self.port)
            async with stream:
                await stream.send_all(payload.encode())
                data = b""
                while b"\r\n" not in data:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        raise OSError("redis closed the connection")
                    data += chunk
        return data.split(b"\r\n", 1)[0].decode()

    async def kill_pubsub_clients(self) -> int:
        """CLIENT KILL TYPE pubsub: cut every subscriber's connection; how many there were."""
        return int((await self.command("CLIENT", "KILL", "TYPE", "pubsub"))[1:])


@asynccontextmanager
async def running_redis(directory: Path) -> AsyncIterator[RedisServer]:
    """A started redis-server (skips, or fails under NOCHAT_REQUIRE_SERVICES=1, without one)."""
    server = RedisServer(require_program("redis-server"), directory, free_port())
    await server.start()
    try:
        yield server
    finally:
        with trio.move_on_after(STEP_S, shield=True):
            await server.stop()
