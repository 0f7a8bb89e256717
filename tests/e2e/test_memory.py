"""Slow readers replaying a room of large messages, and idle joined sockets, cost bounded
server memory.

Measured as the RSS of a `nochat serve` child process (VmHWM for the peak, VmRSS after):
RSS is what the operator pays and what the original report measured, it counts what
tracemalloc cannot see (allocator fragmentation, C buffers), and the test's own clients
do not count towards it.
"""

from __future__ import annotations

import secrets
import urllib.request
from contextlib import AsyncExitStack
from pathlib import Path

import trio

from ..support import Api, ServerProcess, server_process, stalled_client, ws_connect

USERS = 3
SOCKETS_PER_USER = 15
MESSAGES = 3000
TEXT_CHARS = 3900
#: Growth allowed over the baseline while the slow readers are connected, and after.
PEAK_GROWTH_KIB = 200 * 1024
AFTER_GROWTH_KIB = 64 * 1024
METRICS_TOKEN = "memory-test-metrics"


async def _evictions(server: ServerProcess) -> int:
    def fetch() -> str:
        request = urllib.request.Request(
            server.http + "/metrics", headers={"Authorization": "Bearer " + METRICS_TOKEN}
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return str(resp.read().decode())

    for line in (await trio.to_thread.run_sync(fetch)).splitlines():
        if line.startswith("nochat_evictions_total "):
            return int(float(line.split()[1]))
    raise AssertionError("no nochat_evictions_total in /metrics")


async def _seed(server: ServerProcess, token: str) -> None:
    """MESSAGES of TEXT_CHARS incompressible characters each into `general`."""
    async with ws_connect(server, token) as writer:
        for start in range(0, MESSAGES, 100):
            for i in range(start, start + 100):
                await writer.say(f"{i} " + secrets.token_hex(TEXT_CHARS // 2))
            for _ in range(100):
                await writer.expect("ack")


async def test_memory_slow_replays_stay_under_budget_and_return_to_baseline(
    tmp_path: Path,
) -> None:
    env = {
        "outbox_stall_s": "2",
        "metrics_token": METRICS_TOKEN,
        # The kernel must not kill the stalled sockets first: the server has to.
        "tcp_user_timeout_s": "120",
        "send_rate_per_s": "100000",
        "send_burst": "100000",
        "frame_rate_per_s": "100000",
        "frame_burst": "100000",
    }
    async with server_process(tmp_path / "d", **env) as server:
        api = Api(server.http)
        users = [await api.signup(f"reader{i}") for i in range(USERS)]
        await _seed(server, users[0].token)
        baseline = server.status_kib("VmRSS")
        server.reset_peak()
        readers = USERS * SOCKETS_PER_USER
        async with trio.open_nursery() as clients:
            streams = []
            for n in range(readers):
                user = users[n % USERS]
                _, stream = await stalled_client(
                    server, user.token, clients, type="join", room="general", since=0
                )
                streams.append(stream)
            with trio.fail_after(120):
                while True:  # the server is another process: poll it, with a deadline
                    peak = server.status_kib("VmHWM") - baseline
                    assert peak < PEAK_GROWTH_KIB, f"grew {peak} KiB with {readers} readers"
                    if await _evictions(server) == readers:  # every stalled replay
                        break
                    await trio.sleep(0.2)
            # Evicted, their write pumps still wait on full sockets (shielded writes) until
            # the peer goes: the clients leave now.
            for stream in streams:
                await stream.aclose()
            clients.cancel_scope.cancel()
        with trio.fail_after(60):
            while True:  # polling the child again
                if (await users[0].get("/api/stats"))["connections"] == 0:
                    break
                await trio.sleep(0.2)
        peak = server.status_kib("VmHWM") - baseline
        after = server.status_kib("VmRSS") - baseline
        print(f"baseline {baseline} KiB, peak +{peak} KiB, after +{after} KiB")
        assert peak < PEAK_GROWTH_KIB
        assert after < AFTER_GROWTH_KIB


IDLE_SOCKETS = 400
IDLE_WARMUP = 40
#: RSS each idle, joined connection may add (loadgen idle-10000 measured 12.4 KiB taken
#: over and 35 KiB on Hypercorn's path, docs/BENCHMARKS.md "Idle"; a few hundred sockets
#: pay a little more each for the tables they grow).
IDLE_KIB_PER_SOCKET = 20


async def _idle_sockets(server: ServerProcess, token: str, n: int, stack: AsyncExitStack) -> None:
    for _ in range(n):
        client = await stack.enter_async_context(ws_connect(server, token))
        await client.join()


async def test_memory_idle_joined_sockets_stay_small(tmp_path: Path) -> None:
    env = {"max_connections_per_user": str(2 * IDLE_SOCKETS), "first_frame_timeout_s": "120"}
    async with server_process(tmp_path / "d", **env) as server:
        user = await Api(server.http).signup("idle")
        assert user.token is not None
        async with AsyncExitStack() as stack:
            # Warm up first: the first sockets grow the tables every socket shares.
            await _idle_sockets(server, user.token, IDLE_WARMUP, stack)
            before = server.status_kib("VmRSS")
            await _idle_sockets(server, user.token, IDLE_SOCKETS, stack)  # each one joined
            per_socket = (server.status_kib("VmRSS") - before) / IDLE_SOCKETS
            print(f"{per_socket:.1f} KiB per idle joined socket")
            assert per_socket < IDLE_KIB_PER_SOCKET
