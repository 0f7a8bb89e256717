"""Keep-alive timers that survive the request that restarted them (Hypercorn internals).

Part of the transport adapter: `install_idle_task` is called by `transport.install()`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import TrioSingleTask
from hypercorn.typing import TaskGroup

from .hypercorn import NoChatConfig


class _IdleTask(TrioSingleTask):
    """A connection's keep-alive timer that survives the request that started it.

    Hypercorn restarts the timer (`TCPServer._idle_timeout`, which also closes the
    connection at shutdown) from the task that sent the response, after a lock and with
    `nursery.start`: two checkpoints. Quart-Trio cancels that task's nursery as soon as
    the response is out, so the restart was often cancelled at one of them, and the
    keep-alive connection was left with no timer at all: an idle browser connection
    neither timed out nor closed at shutdown, and SIGTERM waited out the whole grace
    period (5.04 s instead of 0.04 s). This restart has no checkpoint (so no lock is
    needed) and starts the timer with `start_soon` under the connection's own nursery.
    """

    async def restart(self, task_group: TaskGroup, action: Callable[[], Awaitable[None]]) -> None:
        if self._handle is not None:
            self._handle.cancel()
        scope = self._handle = trio.CancelScope()
        task_group._nursery.start_soon(_run_in_scope, scope, action)  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None


async def _run_in_scope(scope: trio.CancelScope, action: Callable[[], Awaitable[None]]) -> None:
    with scope:
        await action()


def install_idle_task() -> None:
    """Give every TCPServer whose config is a NoChatConfig an `_IdleTask` (once per process)."""
    if getattr(TCPServer.__init__, "_nochat_hooks", False):
        return
    original = TCPServer.__init__

    def init(self: TCPServer, app: object, config: Config, *args: object) -> None:
        original(self, app, config, *args)  # type: ignore[arg-type]
        if isinstance(config, NoChatConfig):
            self.idle_task = _IdleTask()

    init._nochat_hooks = True  # type: ignore[attr-defined]
    TCPServer.__init__ = init  # type: ignore[method-assign, assignment]
