"""The one place that touches Hypercorn internals (the direct reader and writer), pinned.

The rest of NoChat sees this small API: `install()` (explicit, before serving),
`NoChatConfig`, `sink_of(scope)` for a connection's `FrameSink`, and `DirectSocket`.
"""

from .hypercorn import DirectSocket, NoChatConfig, install, sink_of
from .sink import FrameSink

__all__ = ["DirectSocket", "FrameSink", "NoChatConfig", "install", "sink_of"]
