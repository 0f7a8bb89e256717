"""Serving: Hypercorn's trio worker with NoChat's sockets, limits and graceful shutdown."""

from __future__ import annotations

import contextlib
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable

import trio
from hypercorn.trio import serve as hypercorn_serve
from quart_trio import QuartTrio

from . import transport
from .app import create_app
from .datadir import DataDirLock, check_database
from .errors import StartupError
from .services import Services
from .settings import Settings

log = logging.getLogger(__name__)


def hypercorn_config(settings: Settings, listen_fd: int | None = None) -> transport.NoChatConfig:
    """Hypercorn's config from Settings. Its websocket hooks engage once
    `transport.install()` has run (`serve` does that). `listen_fd`: serve on a listening
    socket inherited from `nochat serve --workers` (nochat/workers.py) instead of binding."""
    config = transport.NoChatConfig()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}" if listen_fd is None else f"fd://{listen_fd}"]
    config.tcp_user_timeout_ms = int(settings.tcp_user_timeout_s * 1000)
    config.backlog = settings.listen_backlog
    config.websocket_max_message_size = settings.max_frame_bytes
    config.websocket_ping_interval = None  # keepalive is the app's (it checks answers)
    config.websocket_compression = settings.websocket_compression
    config.direct_send = settings.direct_send
    config.socket_takeover = settings.socket_takeover
    config.graceful_timeout = settings.shutdown_grace_s
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    if settings.tls:
        # TLS: every socket is wrapped, so the direct writer finds an SSLStream, not a
        # SocketStream, and stands aside (transport.attach); the direct reader still cuts
        # the decrypted frames. docs/ARCHITECTURE.md ("TLS") has what that costs.
        config.certfile = settings.certfile
        config.keyfile = settings.keyfile
    return config


def check_tls(config: transport.NoChatConfig) -> None:
    """Raise StartupError unless the certificate and key load (Hypercorn would only
    find out in the accept loop, after start-up reported success)."""
    if not config.ssl_enabled:
        return
    try:
        config.create_ssl_context()
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise StartupError(
            f"cannot load TLS certificate {config.certfile} / key {config.keyfile}: {reason}"
        ) from None


def app_services(app: QuartTrio) -> Services:
    svc = app.extensions["nochat"]
    assert isinstance(svc, Services)
    return svc


async def serve(
    settings: Settings,
    *,
    app: QuartTrio | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    listen_fd: int | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve NoChat until SIGINT/SIGTERM (or `shutdown_trigger` returns).

    Start-up takes the data directory's lock (held until this returns) and refuses a
    damaged database (nochat/datadir.py), both before anything listens. Shutdown order:
    refuse new sockets, close every connection with 1012 and wait for
    them (at most shutdown_grace_s), stop Hypercorn, then commit what the store still
    holds. `task_status.started` receives the bound URLs (port 0 becomes a real port).
    `app` defaults to `create_app(settings)`. A worker of `--workers` (`listen_fd` set)
    serves its parent's socket and takes no data-directory lock: the parent holds it.
    """
    app = app or create_app(settings)
    svc = app_services(app)
    trigger = shutdown_trigger or _wait_for_signal

    async def shutdown() -> None:
        await trigger()
        log.info("shutting down: closing %d connections", svc.hub.connection_count())
        svc.drain.begin()
        with trio.move_on_after(settings.shutdown_grace_s):
            await svc.drain.drained.wait()

    transport.install()
    config = hypercorn_config(settings, listen_fd)
    check_tls(config)
    with contextlib.nullcontext() if listen_fd is not None else DataDirLock(settings.data_dir):
        if not settings.database_url:
            await trio.to_thread.run_sync(check_database, settings.db_path)
        await hypercorn_serve(
            app,
            config,
            shutdown_trigger=shutdown,
            task_status=task_status,
        )


async def _wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s", signal.Signals(signum).name)
            return
