"""`nochat serve --workers N`: one listening socket, N worker processes, one supervisor.

The parent binds the socket (port 0 works: the port is known before any worker starts),
holds the data directory's lock, and starts N children (`nochat serve --worker-fd FD`),
each its own Trio process with its own Hypercorn, all accepting from that one inherited
socket: the kernel hands each connection to one of them. The workers share nothing in
memory, so they need what several machines need (settings.py refuses less): PostgreSQL
for the room log and Redis for events and signals between them.

SIGTERM or SIGINT to the parent goes to every worker; each closes its sockets with 1012
and commits what it holds (server.serve), and the parent waits for all of them. A worker
that dies on its own takes the others down with it (exit status 1), so a supervisor such
as systemd restarts one whole server rather than leaving it short of a worker unseen.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import Sequence

import trio

from .datadir import DataDirLock
from .server import hypercorn_config
from .settings import Settings

log = logging.getLogger(__name__)

#: How long the parent waits for the workers beyond their own shutdown grace.
STOP_MARGIN_S = 5.0


async def run_workers(settings: Settings, worker_args: Sequence[str]) -> int:
    """Serve with `settings.workers` children until SIGTERM/SIGINT; the exit status.

    `worker_args`: the command-line flags each child gets besides `--worker-fd`."""
    config = hypercorn_config(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with DataDirLock(settings.data_dir):
        (sock,) = config.create_sockets().insecure_sockets
        with sock:
            sock.listen(config.backlog)
            fd = sock.fileno()
            cmd = [sys.executable, "-m", "nochat", "serve", *worker_args, "--worker-fd", str(fd)]
            host, port = sock.getsockname()[:2]
            log.info(
                "NoChat listening on http://%s:%d with %d workers", host, port, settings.workers
            )
            return await _supervise(cmd, fd, settings)


async def _supervise(cmd: list[str], fd: int, settings: Settings) -> int:
    status = 0
    processes: list[trio.Process] = []
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            for _ in range(settings.workers):
                processes.append(
                    await trio.lowlevel.open_process(cmd, pass_fds=(fd,), stdin=subprocess.DEVNULL)
                )
            exited = trio.Event()

            async def watch(process: trio.Process) -> None:
                await process.wait()
                exited.set()

            for process in processes:
                nursery.start_soon(watch, process)
            async with trio.open_nursery() as waiting:

                async def on_signal() -> None:
                    async for signum in signals:
                        log.info("received %s: stopping the workers", signal.Signals(signum).name)
                        break
                    waiting.cancel_scope.cancel()

                waiting.start_soon(on_signal)
                await exited.wait()
                waiting.cancel_scope.cancel()
                status = 1
                log.error("a worker exited by itself: stopping the others")
        for process in processes:
            if process.returncode is None:
                process.terminate()
        with trio.move_on_after(settings.shutdown_grace_s + STOP_MARGIN_S) as late:
            for process in processes:
                await process.wait()
        if late.cancelled_caught:
            for process in processes:
                if process.returncode is None:
                    log.error("worker %d did not stop in time: killed", process.pid)
                    process.kill()
    return status
