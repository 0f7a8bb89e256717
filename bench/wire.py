"""The few protocol v1 frames the load generator sends, and a fast decoder for what it receives.

Server frames are one event object or a JSON array of them (docs/PROTOCOL.md).
The decoder keeps only the fields the harness reads; msgspec skips the rest.
"""

from __future__ import annotations

from typing import Final

import msgspec

SUBPROTOCOL: Final = "nochat.v1"


class Event(msgspec.Struct):
    """Any server event, reduced to what the harness looks at."""

    type: str
    room: str = ""
    seq: int = 0
    head_seq: int = 0
    text: str = ""
    client_id: str = ""
    code: str = ""
    message: str = ""


_one = msgspec.json.Decoder(Event)
_many = msgspec.json.Decoder(list[Event])
_encoder = msgspec.json.Encoder()


def decode(frame: str | bytes) -> list[Event]:
    """Decode one server frame (an object or an array of objects) into its events."""
    head = frame[:1]
    if head in ("[", b"["):
        return _many.decode(frame)
    return [_one.decode(frame)]


def decode_all(payloads: list[bytes]) -> list[Event]:
    """The events of several frames' payloads, in order."""
    if len(payloads) == 1:
        return decode(payloads[0])
    out: list[Event] = []
    for p in payloads:
        out.extend(decode(p))
    return out


def join(room: str, since: int | None = None, ref: int | None = None) -> str:
    frame: dict[str, object] = {"type": "join", "room": room}
    if since is not None:
        frame["since"] = since
    if ref is not None:
        frame["ref"] = ref
    return _encoder.encode(frame).decode()


def send(room: str, text: str, client_id: str) -> str:
    return _encoder.encode(
        {"type": "send", "room": room, "text": text, "client_id": client_id}
    ).decode()


PONG: Final = '{"type":"pong"}'
