"""The one place that touches Hypercorn internals (the direct reader and writer, the
connection's writes, close and linger, the keep-alive timer), pinned.

The rest of NoChat sees this small API: `install()` (explicit, before serving),
`NoChatConfig`, `sink_of(scope)` for a connection's `FrameSink`, `DirectSocket`, and the
takeover: `handover_of(scope)` → `Handover.take_over(accept)` → a `TakenSocket`, run in
a `SocketHost`. Modules: hypercorn.py (the WebSocket stream hooks, NoChatConfig),
direct.py (the DirectSocket every write goes through), connection_hooks.py (Hypercorn's
TCP connection routed through it), takeover.py (NoChat owns the socket after the
accept), idle.py (keep-alive timers), sink.py (what the hub writes to).
"""

from . import connection_hooks, hypercorn, idle
from .direct import CLOSE_LINGER_S, DirectSocket
from .hypercorn import NoChatConfig, sink_of
from .sink import FrameSink
from .takeover import Disconnected, Handover, SocketHost, TakenSocket, handover_of

__all__ = [
    "CLOSE_LINGER_S",
    "DirectSocket",
    "Disconnected",
    "FrameSink",
    "Handover",
    "NoChatConfig",
    "SocketHost",
    "TakenSocket",
    "handover_of",
    "install",
    "sink_of",
]


def install() -> None:
    """Hook NoChat's transport into Hypercorn for configs that are a `NoChatConfig`:
    the WebSocket stream (`hypercorn.install`: direct reader and writer), the TCP
    connection (`connection_hooks.install_connection_hooks`: every write through the
    DirectSocket, ordered close and linger, one connection's failure contained) and
    keep-alive timers that survive the request that restarted them
    (`idle.install_idle_task`). Idempotent."""
    hypercorn.install()
    connection_hooks.install_connection_hooks()
    idle.install_idle_task()
