"""`hypercorn --worker-class trio nochat.asgi:app`: the app configured from NOCHAT_* variables.

Hypercorn's own `--bind` (default 127.0.0.1:8000) decides where this launch listens:
NOCHAT_HOST and NOCHAT_PORT are read only by `nochat serve`, and a warning at start says
so when they are set. This launch also uses Hypercorn's own sockets and signal
handling, so it lacks two things `nochat serve` does: TCP_USER_TIMEOUT on the listening
socket (hand Hypercorn a prepared socket with `--bind fd://N` to get it) and closing
every WebSocket with 1012 before the listener stops (Hypercorn drops them; clients
reconnect and resume all the same).
Pass `--websocket-max-message-size` equal to NOCHAT_MAX_FRAME_BYTES (default 65536).

Like `nochat serve`, importing this takes the data directory's lock for the life of the
process and refuses a damaged database (nochat/datadir.py); with Hypercorn's `--workers`
above 1 every worker after the first is refused, as a second process must be.
"""

from __future__ import annotations

import logging
import os

from .app import create_app
from .datadir import DataDirLock, check_database
from .settings import ENV_PREFIX, Settings

log = logging.getLogger(__name__)

_settings = Settings.from_env()
_ignored = [
    f"{ENV_PREFIX}{name}" for name in ("HOST", "PORT") if f"{ENV_PREFIX}{name}" in os.environ
]
if _ignored:
    log.warning(
        "%s ignored under the hypercorn command: its --bind decides where it listens",
        " and ".join(_ignored),
    )
app = create_app(_settings)
#: Held (never released) for as long as the process runs.
data_dir_lock = DataDirLock(_settings.data_dir)
data_dir_lock.acquire()
check_database(_settings.db_path)
