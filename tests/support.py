"""Test helpers: a real NoChat server on port 0, a small REST client, a WebSocket client."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
import trio
import trio_websocket

from nochat.app import create_app
from nochat.server import app_services, serve
from nochat.services import Services
from nochat.settings import Settings

#: Every network step in tests finishes within this bound or the test fails.
STEP_S = 10.0


def require_program(name: str) -> str:
    """The program's path; skip (or fail under NOCHAT_REQUIRE_SERVICES=1) when missing."""
    path = shutil.which(name) or (name if os.path.exists(name) else None)
    if path is None:
        reason = f"{name} is not installed"
        if os.environ.get("NOCHAT_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " and NOCHAT_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    return path


class Listening(Protocol):
    """Any server the WebSocket helpers can reach: in-process or a child process."""

    @property
    def port(self) -> int: ...


@dataclass
class RunningServer:
    settings: Settings
    port: int
    services: Services
    _shutdown: trio.Event
    _done: trio.Event

    @property
    def http(self) -> str:
        scheme = "https" if self.settings.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        scheme = "wss" if self.settings.tls else "ws"
        return f"{scheme}://127.0.0.1:{self.port}/ws"

    async def stop(self) -> None:
        """Graceful shutdown, as on SIGTERM; returns when the store is flushed and closed."""
        self._shutdown.set()
        with trio.fail_after(STEP_S + self.settings.shutdown_grace_s):
            await self._done.wait()


async def start_server(nursery: trio.Nursery, settings: Settings) -> RunningServer:
    """Start `serve` for real (Hypercorn, port 0 unless settings say otherwise)."""
    shutdown, done = trio.Event(), trio.Event()
    app = create_app(settings)

    async def run(task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            await serve(settings, app=app, shutdown_trigger=shutdown.wait, task_status=task_status)
        finally:
            done.set()

    with trio.fail_after(STEP_S):
        binds = await nursery.start(run)
    port = int(binds[0].rsplit(":", 1)[1])
    return RunningServer(settings, port, app_services(app), shutdown, done)


@dataclass
class ServerProcess:
    """`python -m nochat serve` in a child process (for measuring its memory)."""

    port: int
    process: trio.Process

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status_kib(self, field_name: str) -> int:
        """A /proc/<pid>/status field in KiB (VmRSS: now, VmHWM: the peak)."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
        raise KeyError(field_name)

    def reset_peak(self) -> None:
        """Make VmHWM start again from the current RSS (Linux: clear_refs 5)."""
        with open(f"/proc/{self.process.pid}/clear_refs", "w") as refs:
            refs.write("5")


@asynccontextmanager
async def server_process(data_dir: Path, **env: str) -> AsyncIterator[ServerProcess]:
    """Run `nochat serve` with NOCHAT_* from `env` until the block ends (then SIGTERM)."""
    port = free_port()  # the child reports none back
    full = {
        **os.environ,
        "NOCHAT_DATA_DIR": str(data_dir),
        "NOCHAT_PORT": str(port),
        "NOCHAT_PASSWORD_HASHING": "fast",
        "NOCHAT_SECRET": "test-secret",
        **{"NOCHAT_" + k.upper(): v for k, v in env.items()},
    }
    cmd = [sys.executable, "-m", "nochat", "serve"]
    process = await trio.lowlevel.open_process(cmd, env=full, stderr=subprocess.DEVNULL)
    try:
        await wait_until_serving(f"http://127.0.0.1:{port}", within_s=20)
        yield ServerProcess(port, process)
    finally:
        process.terminate()
        with trio.move_on_after(STEP_S, shield=True):
            await process.wait()
        if process.returncode is None:
            process.kill()


def make_settings(data_dir: Any, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "port": 0,
        "data_dir": data_dir,
        "password_hashing": "fast",
        "secret": "test-secret",
        "shutdown_grace_s": 2.0,
        # Tests that flood on purpose are not about rate limits (test_limits.py is).
        "send_rate_per_s": 10_000.0,
        "send_burst": 10_000,
        "frame_rate_per_s": 10_000.0,
        "frame_burst": 10_000,
        "signup_rate_per_h": 10_000,
    }
    base.update(overrides)
    return Settings(**base)


def free_port() -> int:
    """A port nothing listens on now, for a child process that cannot report port 0's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli_env(data_dir: Any, **variables: str) -> dict[str, str]:
    """The environment for a `nochat` child: ours without NOCHAT_* settings, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOCHAT_")}
    env.update(NOCHAT_DATA_DIR=str(data_dir), NOCHAT_PASSWORD_HASHING="fast", **variables)
    return env


async def run_cli(args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m nochat ARGS` to its end (bounded) and capture what it printed."""
    with trio.fail_after(STEP_S * 2):
        return await trio.run_process(
            [sys.executable, "-m", "nochat", *args],
            env=env,
            check=False,
            capture_stdout=True,
            capture_stderr=True,
        )


async def wait_until_serving(base: str, *, within_s: float = STEP_S * 2) -> None:
    """Poll a child process's /healthz until it answers (bounded): it has no event of ours."""
    with trio.fail_after(within_s):
        while True:
            try:
                await Api(base).get("/healthz")
                return
            except (OSError, HttpError):
                await trio.sleep(0.05)


@asynccontextmanager
async def cli_server(
    data_dir: Any, *args: str, **variables: str
) -> AsyncIterator[tuple[trio.Process, str]]:
    """`python -m nochat serve` in a child process; yields it and its base URL once it
    serves, and terminates it (bounded) on the way out."""
    port = free_port()
    cmd = [sys.executable, "-m", "nochat", "serve", "--port", str(port), *args]
    proc = await trio.lowlevel.open_process(
        cmd, env=cli_env(data_dir, **variables), stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_until_serving(base)
        yield proc, base
    finally:
        if proc.returncode is None:
            proc.terminate()
        with trio.fail_after(STEP_S * 2):
            await proc.wait()


class HttpError(Exception):
    def __init__(self, status: int, body: Any, headers: Any) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers


@dataclass
class Api:
    """Blocking urllib in a worker thread: a real HTTP client, no extra dependency."""

    base: str
    token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: For an https:// base: the context that trusts the test's certificate.
    ssl_context: ssl.SSLContext | None = None

    async def call(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None
    ) -> Any:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json", **self.headers}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)

        def run() -> Any:
            try:
                with urllib.request.urlopen(req, timeout=STEP_S, context=self.ssl_context) as resp:
                    text = resp.read()
                    return json.loads(text) if text else None
            except urllib.error.HTTPError as exc:
                text = exc.read()
                try:
                    parsed = json.loads(text)
                except ValueError:
                    parsed = text
                raise HttpError(exc.code, parsed, exc.headers) from None

        with trio.fail_after(STEP_S):
            return await trio.to_thread.run_sync(run)

    async def get(self, path: str) -> Any:
        return await self.call("GET", path)

    async def post(self, path: str, body: Any) -> Any:
        return await self.call("POST", path, body)

    async def signup(self, name: str, password: str = "correct horse") -> Api:
        """Register `name`, log in, and return an Api carrying its token."""
        await self.post("/api/users", {"name": name, "password": password})
        session = await self.post("/api/sessions", {"name": name, "password": password})
        return Api(self.base, session["token"], ssl_context=self.ssl_context)


class WsClient:
    """A trio-websocket client that unpacks batched frames into single events."""

    def __init__(self, conn: trio_websocket.WebSocketConnection) -> None:
        self.conn = conn
        self.pending: deque[dict[str, Any]] = deque()

    async def send(self, **frame: Any) -> None:
        await self.conn.send_message(json.dumps(frame))

    async def send_raw(self, data: str | bytes) -> None:
        await self.conn.send_message(data)

    async def recv(self) -> dict[str, Any]:
        with trio.fail_after(STEP_S):
            while not self.pending:
                data = json.loads(await self.conn.get_message())
                self.pending.extend(data if isinstance(data, list) else [data])
        return self.pending.popleft()

    async def expect(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The next event of `kind` whose fields match; pings, presence, typing are skipped."""
        while True:
            event = await self.recv()
            if event["type"] == kind and all(event.get(k) == v for k, v in fields.items()):
                return event
            if event["type"] in ("ping", "presence", "typing", "message", "ack", "room"):
                if event["type"] == "ping":
                    await self.send(type="pong")
                continue
            raise AssertionError(f"expected {kind} {fields}, got {event}")

    async def join(self, room: str = "general", **extra: Any) -> dict[str, Any]:
        await self.send(type="join", room=room, **extra)
        return await self.expect("joined", room=room)

    async def say(self, text: str, room: str = "general", client_id: str | None = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        await self.send(type="send", room=room, text=text, client_id=client_id)
        return client_id

    async def messages(self, n: int, room: str = "general") -> list[dict[str, Any]]:
        """The next `n` message events of `room`, skipping everything else."""
        got: list[dict[str, Any]] = []
        while len(got) < n:
            event = await self.recv()
            if event["type"] == "message" and event["room"] == room:
                got.append(event)
            elif event["type"] == "ping":
                await self.send(type="pong")
        return got

    async def closed(self) -> int:
        """Read until the server closes; return the close code."""
        with trio.fail_after(STEP_S):
            try:
                while True:
                    await self.conn.get_message()
            except trio_websocket.ConnectionClosed as exc:
                assert exc.reason is not None
                return int(exc.reason.code)


@asynccontextmanager
async def ws_connect(
    server: Listening,
    token: str | None,
    *,
    subprotocols: list[str] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    **kwargs: Any,
) -> AsyncIterator[WsClient]:
    """A client of `server`'s /ws; over TLS (wss://) when `ssl_context` is given."""
    extra = list(headers or [])
    if token:
        extra.append((b"Authorization", f"Bearer {token}".encode()))
    # Our own stream, closed in `finally`: trio-websocket leaves the socket open when a
    # test ends right after the server's close frame (it waits for the server's TCP FIN).
    stream: trio.abc.Stream
    if ssl_context is None:
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    else:
        stream = await trio.open_ssl_over_tcp_stream(
            "127.0.0.1", server.port, ssl_context=ssl_context, https_compatible=True
        )
    try:
        async with _unwrap_rejection(), trio.open_nursery() as nursery:
            with trio.fail_after(STEP_S):
                conn = await trio_websocket.wrap_client_stream(
                    nursery,
                    stream,
                    f"127.0.0.1:{server.port}",  # the Host header, port included as browsers do
                    "/ws",
                    subprotocols=subprotocols if subprotocols is not None else ["nochat.v1"],
                    extra_headers=extra,
                    **kwargs,
                )
            try:
                yield WsClient(conn)
            finally:
                with trio.move_on_after(STEP_S, shield=True):
                    await conn.aclose()
                nursery.cancel_scope.cancel()
    finally:
        await stream.aclose()


async def stalled_client(
    server: Listening, token: str, nursery: trio.Nursery, **frame: Any
) -> tuple[WsClient, trio.SocketStream]:
    """A client with a tiny receive window whose application never reads; it sends
    `frame` (when given) right after the handshake."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", server.port))
    stream = trio.SocketStream(sock)
    conn = await trio_websocket.wrap_client_stream(
        nursery,
        stream,
        "127.0.0.1",
        "/ws",
        subprotocols=["nochat.v1"],
        extra_headers=[(b"Authorization", f"Bearer {token}".encode())],
        message_queue_size=1,
        max_message_size=16 * 1024 * 1024,
    )
    client = WsClient(conn)
    if frame:
        await client.send(**frame)
    return client, stream


@asynccontextmanager
async def _unwrap_rejection() -> AsyncIterator[None]:
    """Raise a refused handshake as the plain ConnectionRejected, not inside a group."""
    try:
        yield
    except BaseExceptionGroup as group:
        match, _ = group.split(trio_websocket.ConnectionRejected)
        if match is not None and len(match.exceptions) == 1:
            leaf = match.exceptions[0]
            if isinstance(leaf, trio_websocket.ConnectionRejected):
                raise leaf from None
        raise
