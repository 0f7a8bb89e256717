"""The fast send path: server WebSocket frames built once, written straight to the socket.

A server→client frame is unmasked, so the complete frame of an event (header + UTF-8
payload) is the same bytes for every subscriber. Going through Quart → Hypercorn →
wsproto → h11 costs ~40 µs of Python per frame; writing prepared bytes costs one
`os.write`. The hub therefore builds each event's frame once and writes it to every idle
subscriber's socket at once, with no task switch; only what the kernel will not take now
goes through the connection's write pump.

`DirectSocket` reaches the TCP stream under Hypercorn's WebSocket stream. Hypercorn has
no public hook for that, so `attach` follows its internals (pinned in pyproject) and
returns None when they do not look as expected, for TLS, HTTP/2, or compression (frames
would have to be deflated): the connection then uses the ordinary path.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import trio

log = logging.getLogger(__name__)

_TEXT = 0x81  # FIN + opcode 1 (text)
SCOPE_KEY = "nochat.direct"


def text_frame(payload: str) -> bytes:
    """One complete, unmasked, unfragmented text frame carrying `payload`."""
    data = payload.encode()
    n = len(data)
    if n < 126:
        return bytes((_TEXT, n)) + data
    if n < 65536:
        return bytes((_TEXT, 126)) + n.to_bytes(2, "big") + data
    return bytes((_TEXT, 127)) + n.to_bytes(8, "big") + data


class DirectSocket:
    """Writes prepared frames to one connection's TCP socket, in turn with Hypercorn."""

    __slots__ = ("_lock", "_socket", "_stream")

    def __init__(self, lock: trio.Lock, stream: trio.SocketStream) -> None:
        self._lock = lock
        self._stream = stream
        self._socket = stream.socket

    def send_nowait(self, data: bytes) -> int:
        """Write what the kernel takes now: the byte count, 0 if nothing could go now.

        Hypercorn's own writes (close frames, HTTP) hold the same lock, so frames never
        interleave. Raises OSError when the peer is gone.
        """
        # Ask the socket for its descriptor every time: once Hypercorn has closed it, the
        # number may already belong to a newer connection (fileno() is -1 then).
        fd = self._socket.fileno()
        if fd < 0:
            raise BrokenPipeError("the connection is closed")
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            return 0
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0
        finally:
            self._lock.release()

    async def send_all(self, data: bytes) -> None:
        """Write all of `data`, waiting for the socket; shielded like Hypercorn's writes."""
        async with self._lock:
            with trio.CancelScope(shield=True):
                await self._stream.send_all(data)


def attach(ws_stream: Any) -> DirectSocket | None:
    """The DirectSocket under a Hypercorn WSStream, or None when it cannot be had safely."""
    try:
        h11_protocol = ws_stream.send.__self__
        tcp_server = h11_protocol.send.__self__
        lock, stream = tcp_server.send_lock, tcp_server.stream
    except AttributeError:
        return None
    if not isinstance(lock, trio.Lock) or not isinstance(stream, trio.SocketStream):
        return None
    return DirectSocket(lock, stream)
