"""`nochat serve` as a newcomer meets it: start-up refusals in one line, fast shutdown."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
from pathlib import Path

import trio

from nochat import __version__
from nochat.datadir import LOCK_FILE
from nochat.store import AppendRequest
from nochat.store.sqlite import SQLiteStore

from ..support import STEP_S, Api, cli_env, cli_server, free_port, run_cli, wait_until_serving

QUIET = ("--log-level", "WARNING")


def one_line(result: subprocess.CompletedProcess[bytes]) -> str:
    """The single line a failed start printed on stderr (and assert it was one, no traceback)."""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert result.returncode != 0
    return lines[0]


async def test_startup_second_server_on_one_data_dir_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with cli_server(data) as (_, base):
        second = await run_cli(["serve", "--port", str(free_port()), *QUIET], cli_env(data))
        line = one_line(second)
        assert "in use by another NoChat process" in line and str(data) in line
        assert await Api(base).get("/readyz") == {"status": "ready", "store": "ok"}
    # The lock dies with its process: a restart on the same directory is served.
    assert (data / LOCK_FILE).exists()
    async with cli_server(data) as (_, base):
        assert (await Api(base).get("/healthz")) == {"status": "ok"}


async def _fill_database(path: Path, messages: int) -> None:
    """A database as the store writes it (through the real store, whatever its schema):
    one room with `messages` messages."""
    store = SQLiteStore(path)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        user = await store.create_user("ann", "x")
        room = await store.room("general")
        assert room is not None
        for i in range(1, messages + 1):
            await store.append(AppendRequest(room, user, f"message {i} " * 10, f"c{i}"))
        store.close()


async def test_startup_database_with_noise_in_the_middle_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "data" / "nochat.sqlite3"
    await _fill_database(db, 200)
    with db.open("r+b") as f:  # 4 KiB of noise in the middle, as the probe did
        f.seek(db.stat().st_size // 2)
        f.write(bytes(range(256)) * 16)
    result = await run_cli(["serve", "--port", str(free_port()), *QUIET], cli_env(db.parent))
    line = one_line(result)
    assert "is damaged" in line and "Backup and restore" in line


async def test_startup_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await run_cli(["serve", "--port", str(port), *QUIET], cli_env(tmp_path / "d"))
    assert (
        one_line(result)
        == f"nochat: cannot listen on 127.0.0.1:{port}: the address is already in use"
    )


async def test_startup_unresolvable_host_is_one_line(tmp_path: Path) -> None:
    args = ["serve", "--host", "no-such-host.invalid", "--port", "0", *QUIET]
    result = await run_cli(args, cli_env(tmp_path / "d"))
    assert one_line(result).startswith("nochat: cannot resolve host 'no-such-host.invalid'")


async def test_startup_unusable_data_dir_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    result = await run_cli(["serve", "--port", "0", *QUIET], cli_env(tmp_path / "file" / "sub"))
    assert one_line(result).startswith(
        f"nochat: cannot use data directory {tmp_path / 'file' / 'sub'}"
    )


async def test_startup_config_errors_from_flags_and_env_are_listed_at_once(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "d", NOCHAT_LOG_LEVEL="loud", NOCHAT_PING_INTERVAL_S="soon")
    env["NOCHAT_PONG_TIMEOUT_S"] = "-1"
    env["NOCHAT_PROT"] = "9000"  # a typo: warned about, not an error
    result = await run_cli(["serve", "--port", "80x"], env)
    assert result.returncode == 2
    warning, error = result.stderr.decode().strip().splitlines()
    assert warning == (
        "nochat: warning: unknown variable NOCHAT_PROT is ignored; did you mean NOCHAT_PORT?"
    )
    for bad in ("--port='80x'", "NOCHAT_PING_INTERVAL_S='soon'", "log_level", "pong_timeout_s"):
        assert bad in error


async def test_startup_version_comes_from_the_package() -> None:
    result = await run_cli(["--version"], cli_env("unused"))
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"nochat {__version__}"


async def test_startup_sigterm_with_an_idle_keepalive_connection_exits_at_once(
    tmp_path: Path,
) -> None:
    async with cli_server(tmp_path / "d") as (proc, base):
        port = int(base.rsplit(":", 1)[1])
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=STEP_S)

        def request() -> int:
            idle.request("GET", "/healthz")  # HTTP/1.1: the connection stays open after
            response = idle.getresponse()
            response.read()
            return response.status

        try:
            assert await trio.to_thread.run_sync(request) == 200
            # The grace period is 5 s; an idle connection must not make shutdown wait it out.
            await _sigterm_exits_at_once(proc)
        finally:
            idle.close()


async def test_startup_sigterm_with_a_connection_that_never_sent_a_request_exits_at_once(
    tmp_path: Path,
) -> None:
    """A browser's speculative preconnection: the keep-alive timer that is not started
    for a connection whose request is already there must run for this one (idle.py)."""
    async with cli_server(tmp_path / "d") as (proc, base):
        port = int(base.rsplit(":", 1)[1])
        with trio.fail_after(STEP_S):
            silent = await trio.open_tcp_stream("127.0.0.1", port)
        async with silent:
            await Api(base).get("/healthz")  # the server has taken the silent one in by now
            await _sigterm_exits_at_once(proc)


async def test_startup_hypercorn_launch_warns_that_nochat_port_is_ignored(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(tmp_path / "d", NOCHAT_PORT="9999")
    cmd = [sys.executable, "-m", "hypercorn", "--worker-class", "trio"]
    cmd += ["--bind", f"127.0.0.1:{port}", "nochat.asgi:app"]
    log = tmp_path / "stderr.txt"
    with log.open("wb") as stderr:
        proc = await trio.lowlevel.open_process(cmd, env=env, stderr=stderr)
        try:
            await wait_until_serving(f"http://127.0.0.1:{port}")
        finally:
            proc.terminate()
            with trio.fail_after(STEP_S):
                await proc.wait()
    assert "NOCHAT_PORT ignored under the hypercorn command" in log.read_text()


async def _sigterm_exits_at_once(proc: trio.Process) -> None:
    """SIGTERM ends the server cleanly in well under its 5 s grace period."""
    started = trio.current_time()
    proc.send_signal(signal.SIGTERM)
    with trio.fail_after(STEP_S):
        await proc.wait()
    assert trio.current_time() - started < 1.0
    assert proc.returncode == 0
