"""What TLS costs the server: `python -m bench.tls_cost [--receivers N] [--messages M]`.

Starts `nochat serve` three times (plain with the direct paths, plain through Hypercorn's
ASGI sends only, TLS with a trustme certificate), each time with N receivers in one room
and one sender that sends M messages one after another, each awaited by every receiver.
Prints the server's CPU time per delivery (from /proc/PID/stat) and the wall time. Not a
test: a measurement for docs/ARCHITECTURE.md ("TLS").
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import trio
import trio_websocket
import trustme

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(base: str, path: str, body: Any, ctx: ssl.SSLContext | None) -> Any:
    req = urllib.request.Request(
        base + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
        return json.loads(resp.read())


async def connect(
    nursery: trio.Nursery, port: int, token: str, ctx: ssl.SSLContext | None
) -> trio_websocket.WebSocketConnection:
    stream: trio.abc.Stream
    if ctx is None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    else:
        stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=ctx)
    return await trio_websocket.wrap_client_stream(
        nursery,
        stream,
        "127.0.0.1",
        "/ws",
        subprotocols=["nochat.v1"],
        extra_headers=[(b"Authorization", f"Bearer {token}".encode())],
    )


class Tally:
    """Messages each receiver has seen; `all_have(n)` wakes when every one has n."""

    def __init__(self, receivers: int) -> None:
        self.counts = [0] * receivers
        self.target = 0
        self.reached = trio.Event()

    def seen(self, receiver: int) -> None:
        self.counts[receiver] += 1
        if min(self.counts) >= self.target:
            self.reached.set()

    async def all_have(self, n: int) -> None:
        self.target, self.reached = n, trio.Event()
        if min(self.counts) < n:
            await self.reached.wait()


async def count_messages(
    conn: trio_websocket.WebSocketConnection, tally: Tally, receiver: int
) -> None:
    while True:
        data = json.loads(await conn.get_message())
        for event in data if isinstance(data, list) else [data]:
            if event["type"] == "message":
                tally.seen(receiver)


async def load(
    pid: int, port: int, token: str, receivers: int, messages: int, ctx: ssl.SSLContext | None
) -> tuple[float, float]:
    """CPU seconds the server spent and wall seconds for `messages` lockstep sends."""
    async with trio.open_nursery() as nursery:
        conns = [await connect(nursery, port, token, ctx) for _ in range(receivers + 1)]
        for conn in conns:
            await conn.send_message(json.dumps({"type": "join", "room": "general"}))
        tally = Tally(receivers)
        for i, conn in enumerate(conns[1:]):
            nursery.start_soon(count_messages, conn, tally, i)
        sender = conns[0]
        await trio.sleep(0.5)  # let the joins settle before the clock starts
        cpu0, t0 = cpu_s(pid), time.perf_counter()
        for i in range(messages):
            frame = {"type": "send", "room": "general", "text": f"m{i} " + "x" * 100}
            frame["client_id"] = uuid.uuid4().hex
            await sender.send_message(json.dumps(frame))
            await tally.all_have(i + 1)
        cpu1, t1 = cpu_s(pid), time.perf_counter()
        nursery.cancel_scope.cancel()
    return cpu1 - cpu0, t1 - t0


def run(receivers: int, messages: int, env: dict[str, str], ctx: Any) -> tuple[float, float]:
    """µs of server CPU per delivery, and the wall time, for one server configuration."""
    port = free_port()
    scheme = "https" if ctx else "http"
    base = f"{scheme}://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        full = {**os.environ, "NOCHAT_DATA_DIR": data, "NOCHAT_PORT": str(port), **env}
        full |= {"NOCHAT_PASSWORD_HASHING": "fast", "NOCHAT_SEND_RATE_PER_S": "100000"}
        full |= {"NOCHAT_SEND_BURST": "100000", "NOCHAT_LOG_LEVEL": "WARNING"}
        full |= {"NOCHAT_SQLITE_SYNCHRONOUS": "OFF", "NOCHAT_MAX_CONNECTIONS_PER_USER": "1000"}
        full |= {"NOCHAT_FRAME_RATE_PER_S": "100000", "NOCHAT_FRAME_BURST": "100000"}
        proc = subprocess.Popen([sys.executable, "-m", "nochat", "serve"], env=full)
        try:
            for _ in range(200):  # a child process: poll until it answers
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1, context=ctx).close()
                    break
                except OSError:
                    time.sleep(0.05)
            user = {"name": "bench", "password": "correct horse"}
            post(base, "/api/users", user, ctx)
            token = post(base, "/api/sessions", user, ctx)["token"]
            cpu, wall = trio.run(load, proc.pid, port, token, receivers, messages, ctx)
            return cpu / (messages * receivers) * 1e6, wall
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--receivers", type=int, default=50)
    parser.add_argument("--messages", type=int, default=400)
    args = parser.parse_args()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    with tempfile.TemporaryDirectory() as tmp:
        certfile, keyfile = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.private_key_pem.write_to_path(str(keyfile))
        cert.cert_chain_pems[0].write_to_path(str(certfile))
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        cases = [
            ("plain, direct paths", {}, None),
            ("plain, ASGI sends", {"NOCHAT_DIRECT_SEND": "false"}, None),
            ("TLS", {"NOCHAT_CERTFILE": str(certfile), "NOCHAT_KEYFILE": str(keyfile)}, ctx),
        ]
        for name, env, context in cases:
            per, wall = run(args.receivers, args.messages, env, context)
            print(f"{name:22s} {per:7.1f} µs server CPU per delivery, {wall:6.2f} s wall")


if __name__ == "__main__":
    main()
