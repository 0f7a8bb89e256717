"""Back-pressure for upload bodies: Quart's request body, but never more than
UPLOAD_BUFFER_BYTES of it waiting in memory.

Quart's ASGI adapter reads the body in a task of its own and appends every piece to the
request's `Body` without waiting, so a fast client's whole upload sits in memory before
(and while) the route stores it. For the upload route, `gated_receive` makes that task
wait whenever the body holds UPLOAD_BUFFER_BYTES not yet taken by the route; Hypercorn
then stops reading the socket (its own queue to the app is bounded), TCP's window
closes, and the client waits. Everything else is Quart's as is.
"""

from __future__ import annotations

import re
from typing import Any, Final

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGIReceiveEvent, Scope
from quart_trio.wrappers import TrioRequest
from quart_trio.wrappers.request import TrioBody

#: The upload route's path.
UPLOAD_PATH_RE: Final = re.compile(r"/api/rooms/.*/files")
#: Body bytes received but not yet taken by the upload route, at most (plus one piece).
UPLOAD_BUFFER_BYTES: Final = 256 * 1024
_GATE_KEY: Final = "nochat.upload_gate"


class UploadGate:
    """How much of one upload's body is waiting; the receiver waits while it is too much."""

    def __init__(self) -> None:
        self.buffered = 0
        self._room = trio.Event()

    def filled(self, n: int) -> None:
        self.buffered += n

    def drained(self) -> None:
        self.buffered = 0
        self._room.set()
        self._room = trio.Event()

    async def wait_for_room(self) -> None:
        while self.buffered >= UPLOAD_BUFFER_BYTES:
            await self._room.wait()


def is_upload(scope: Scope) -> bool:
    return (
        scope["type"] == "http"
        and scope["method"] == "POST"
        and UPLOAD_PATH_RE.fullmatch(scope["path"]) is not None
    )


def gated_receive(scope: Scope, receive: ASGIReceiveCallable) -> ASGIReceiveCallable:
    """`receive` for an upload: waits for room in the body first; the gate rides in the
    scope to the request (NoChatRequest) that fills and drains it."""
    gate = UploadGate()
    scope[_GATE_KEY] = gate  # type: ignore[typeddict-unknown-key]

    async def receive_when_room() -> ASGIReceiveEvent:
        await gate.wait_for_room()
        return await receive()

    return receive_when_room


class GatedBody(TrioBody):
    gate: UploadGate | None = None

    def append(self, data: bytes) -> None:
        super().append(data)
        if self.gate is not None:
            self.gate.filled(len(data))

    async def __anext__(self) -> bytes:
        data = await super().__anext__()
        if self.gate is not None:
            self.gate.drained()
        return data


class NoChatRequest(TrioRequest):
    """Quart's request; on the upload route, with no body cap (MAX_BODY_BYTES is for JSON
    bodies: the route counts against NOCHAT_MAX_UPLOAD_BYTES itself, nochat/uploads.py)
    and the gated body."""

    body_class = GatedBody

    def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any) -> None:
        scope = kwargs.get("scope") or {}
        gate = scope.get(_GATE_KEY)
        if gate is not None:
            kwargs["max_content_length"] = None
        super().__init__(method, scheme, path, *args, **kwargs)
        if isinstance(gate, UploadGate) and isinstance(self.body, GatedBody):
            self.body.gate = gate
