"""`hypercorn --worker-class trio nochat.asgi:app`: the app configured from NOCHAT_* variables.

This launch uses Hypercorn's own sockets and signal handling, so it lacks two things
`nochat serve` does: TCP_USER_TIMEOUT on the listening socket (hand Hypercorn a prepared
socket with `--bind fd://N` to get it) and closing every WebSocket with 1012 before the
listener stops (Hypercorn drops them; clients reconnect and resume all the same).
Pass `--websocket-max-message-size` equal to NOCHAT_MAX_FRAME_BYTES (default 65536).
"""

from __future__ import annotations

from .app import create_app
from .settings import Settings

app = create_app(Settings.from_env())
