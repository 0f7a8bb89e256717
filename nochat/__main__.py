"""The `nochat` command line: `nochat serve [--host] [--port] [--data-dir] [--log-level]`."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from .errors import ConfigError
from .settings import Settings

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
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server (every flag is also NOCHAT_*)")
    serve.add_argument("--host", help="address to listen on (NOCHAT_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port; 0 picks a free one (NOCHAT_PORT, 8000)")
    serve.add_argument("--data-dir", type=Path, help="database and secret (NOCHAT_DATA_DIR)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING… (NOCHAT_LOG_LEVEL, INFO)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = Settings.from_env(
            host=args.host, port=args.port, data_dir=args.data_dir, log_level=args.log_level
        )
    except ConfigError as exc:
        print(f"nochat: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    trio.run(_main, settings)
    return 0


async def _main(settings: Settings) -> None:
    from .server import serve

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, settings)
        # Everything made so far lives as long as the process: keep the collector off it,
        # so full collections stay short (they showed as latency spikes).
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        logging.getLogger("nochat").info("NoChat listening on %s", ", ".join(binds))


if __name__ == "__main__":
    sys.exit(main())
