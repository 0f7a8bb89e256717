"""The `nochat` command line: `nochat serve [--host] [--port] [--data-dir] [--log-level]
[--workers N] [--certfile --keyfile]`, `nochat backup PATH`, `nochat restore PATH` and
`nochat admin promote|demote NAME` (cli_admin.py).

Start-up problems a person can fix (a bad setting, a port in use, a host that does not
resolve, a data directory that cannot be written or is in use, a damaged database) end
the process with one line on stderr and exit status 2 or 1, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import gc
import logging
import socket
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import trio

from . import __version__, cli_admin, logs
from .errors import BackupError, ConfigError, StartupError
from .settings import Settings, unknown_variables

#: Exit statuses: a bad setting (as argparse's usage errors), and anything else that
#: stopped start-up.
EXIT_CONFIG = 2
EXIT_STARTUP = 1

#: The cyclic collector's thresholds while serving (CPython's default: 700, 10, 10). Each
#: connection keeps ~180 collector-tracked objects, and while connections pile up, every
#: growth of a quarter triggers a full collection over all of them: in a storm of 10,000
#: connects that was 13 full collections and 3.3 s of the server's 10.4 CPU seconds (the
#: storm took 10.4 s; 8.2 s with these thresholds, 7.2 s with no collector at all). Not
#: larger: a closed connection's cycles are old by then and wait for an older generation's
#: turn, which comes less often the larger the young one is. In 8 rounds of 2,000 connects
#: and disconnects, RSS levelled off at 121 MiB with the default, 140 MiB with these, and
#: was still climbing past 149 MiB with a young generation of 50,000.
GC_THRESHOLDS = (10_000, 10, 10)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nochat", description="NoChat real-time chat server")
    parser.add_argument("--version", action="version", version=f"nochat {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server (every flag is also NOCHAT_*)")
    serve.add_argument("--host", help="address to listen on (NOCHAT_HOST, default 127.0.0.1)")
    # Plain strings: Settings parses them, so a bad flag is reported with every other problem.
    serve.add_argument("--port", help="port; 0 picks a free one (NOCHAT_PORT, 8000)")
    serve.add_argument("--data-dir", help="database and secret (NOCHAT_DATA_DIR)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING… (NOCHAT_LOG_LEVEL, INFO)")
    serve.add_argument(
        "--workers", help="worker processes on one port; >1 needs Redis and PostgreSQL (1)"
    )
    # Internal: a worker of `--workers` serves the listening socket its parent made.
    serve.add_argument("--worker-fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--certfile", help="PEM certificate chain: serve HTTPS (NOCHAT_CERTFILE)")
    serve.add_argument("--keyfile", help="PEM private key of --certfile (NOCHAT_KEYFILE)")
    backup = commands.add_parser(
        "backup", help="copy the data directory's store to a new directory (server may run)"
    )
    backup.add_argument("path", help="new or empty directory to write the backup to")
    backup.add_argument("--data-dir", help="the data directory (NOCHAT_DATA_DIR)")
    restore = commands.add_parser(
        "restore", help="restore a backup into an empty data directory (server stopped)"
    )
    restore.add_argument("path", help="a directory `nochat backup` wrote")
    restore.add_argument("--data-dir", help="the empty data directory (NOCHAT_DATA_DIR)")
    cli_admin.add_parser(commands)
    return parser.parse_args(argv)


def worker_args(args: argparse.Namespace) -> list[str]:
    """The flags a `--workers` parent passes on to each worker (the settings they set)."""
    out: list[str] = []
    for name in ("host", "port", "data_dir", "log_level", "workers"):
        value = getattr(args, name)
        if value is not None:
            out += [f"--{name.replace('_', '-')}", value]
    return out


def version() -> str:
    """The installed distribution's version, else the source tree's."""
    try:
        return metadata.version("nochat")
    except metadata.PackageNotFoundError:
        return __version__


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for warning in unknown_variables():
        print(f"nochat: warning: {warning}", file=sys.stderr)
    if args.command in ("backup", "restore"):
        return copy_store(args)
    if args.command == "admin":
        return cli_admin.run(args)
    try:
        settings = Settings.from_env(
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            log_level=args.log_level,
            workers=args.workers,
            certfile=args.certfile,
            keyfile=args.keyfile,
        )
    except ConfigError as exc:
        print(f"nochat: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logs.configure(settings.log_level, settings.log_format)
    try:
        if settings.workers > 1 and args.worker_fd is None:
            from .workers import run_workers

            return trio.run(run_workers, settings, worker_args(args))
        trio.run(_main, settings, args.worker_fd)
    except (OSError, StartupError, BaseExceptionGroup) as exc:
        reason = startup_failure(exc, settings)
        if reason is None:
            raise
        print(f"nochat: {reason}", file=sys.stderr)
        return EXIT_STARTUP
    return 0


def copy_store(args: argparse.Namespace) -> int:
    """`nochat backup PATH` / `nochat restore PATH`: one line on success or failure."""
    from .backup import backup, restore

    try:
        settings = Settings.from_env(data_dir=args.data_dir)
    except ConfigError as exc:
        print(f"nochat: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    target = Path(args.path)
    if settings.database_url:
        print(
            f"nochat: {args.command} copies the embedded SQLite store; with "
            "NOCHAT_DATABASE_URL use pg_dump/pg_restore (docs/DEPLOY.md)",
            file=sys.stderr,
        )
        return EXIT_STARTUP
    try:
        if args.command == "backup":
            manifest = backup(settings.data_dir, target)
            print(f"nochat: backed up {manifest['events']} room events to {target}")
        else:
            restore(target, settings.data_dir)
            print(f"nochat: restored {target} into {settings.data_dir}")
    except (BackupError, StartupError) as exc:
        print(f"nochat: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    except OSError as exc:
        print(f"nochat: cannot {args.command}: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return EXIT_STARTUP
    return 0


def startup_failure(exc: BaseException, settings: Settings) -> str | None:
    """One line saying why start-up failed, or None for an error that is a bug."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]  # Trio's nurseries wrap what one task raised
    where = f"{settings.host}:{settings.port}"
    if isinstance(exc, StartupError):
        return exc.message
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {settings.host!r}: {exc.strerror}"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: the address is already in use"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: no such address on this machine"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"cannot use data directory {settings.data_dir}: {exc.strerror}: {exc.filename}"
    if isinstance(exc, OSError):
        return f"cannot start: {exc.strerror or exc}"
    return None


async def _main(settings: Settings, worker_fd: int | None) -> None:
    from functools import partial

    from .server import serve

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, settings, listen_fd=worker_fd))
        # Everything made so far lives as long as the process: keep the collector off it,
        # so full collections stay short (they showed as latency spikes).
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        logging.getLogger("nochat").info("NoChat listening on %s", ", ".join(binds))


if __name__ == "__main__":
    sys.exit(main())
