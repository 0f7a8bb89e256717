"""The one place that touches Hypercorn internals (the direct reader and writer, the
keep-alive timer), pinned.

The rest of NoChat sees this small API: `install()` (explicit, before serving),
`NoChatConfig`, `sink_of(scope)` for a connection's `FrameSink`, and `DirectSocket`.
"""

from . import hypercorn, idle
from .hypercorn import DirectSocket, NoChatConfig, sink_of
from .sink import FrameSink

__all__ = ["DirectSocket", "FrameSink", "NoChatConfig", "install", "sink_of"]


def install() -> None:
    """Hook NoChat's transport into Hypercorn for configs that are a `NoChatConfig`:
    the direct reader and writer (`hypercorn.install`) and keep-alive timers that
    survive the request that restarted them (`idle.install_idle_task`). Idempotent."""
    hypercorn.install()
    idle.install_idle_task()
