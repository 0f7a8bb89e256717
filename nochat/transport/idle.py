"""Keep-alive timers that survive the request that restarted them, and that are not
started for a connection whose first request is already there (Hypercorn internals).

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

    The first timer, armed when the connection opens, waits (`deferred`) until the
    reader finds no request to read at once (connection_hooks.py `start_deferred`): a
    timer task started, run and cancelled for every connection whose request had already
    arrived was ~10 % of the server's CPU while 10,000 WebSockets connected (py-spy). A
    connection the reader waits on has its timer, as before: it closes when idle too
    long, and at once at shutdown.
    """

    def __init__(self, *, defer_first: bool = False) -> None:
        super().__init__()
        self._defer_first = defer_first
        #: The first timer, not started yet: (task group, action).
        self.deferred: tuple[TaskGroup, Callable[[], Awaitable[None]]] | None = None

    async def restart(self, task_group: TaskGroup, action: Callable[[], Awaitable[None]]) -> None:
        if self._defer_first:
            self._defer_first = False
            self.deferred = (task_group, action)
            return
        self._start(task_group, action)

    def start_deferred(self) -> None:
        """Start the first timer after all (the reader is about to wait for a request)."""
        if self.deferred is not None:
            task_group, action = self.deferred
            self._start(task_group, action)

    def _start(self, task_group: TaskGroup, action: Callable[[], Awaitable[None]]) -> None:
        self.deferred = None
        if self._handle is not None:
            self._handle.cancel()
        scope = self._handle = trio.CancelScope()
        task_group._nursery.start_soon(_run_in_scope, scope, action)  # type: ignore[attr-defined]

    async def stop(self) -> None:
        self.deferred = None
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
            # Plain TCP only: the hooked reader can try a read without waiting there.
            self.idle_task = _IdleTask(defer_first=isinstance(self.stream, trio.SocketStream))

    init._nochat_hooks = True  # type: ignore[attr-defined]
    TCPServer.__init__ = init  # type: ignore[method-assign, assignment]
