"""The hand-made wire paths agree with wsproto: server frames parse as the text messages
wsproto would have sent, and client frames wsproto makes are cut into the same messages."""

from __future__ import annotations

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, Ping, TextMessage

from nochat.wire import (
    OP_BINARY,
    OP_PING,
    OP_TEXT,
    FrameReader,
    ProtocolViolation,
    close_code,
    text_frame,
)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_wire_text_frame_parses_as_one_text_message(size: int) -> None:
    payload = ("é" + "x" * size)[:size] if size else ""
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(text_frame(payload))
    (event,) = list(client.events())
    assert isinstance(event, TextMessage)
    assert event.data == payload and event.message_finished


def _client_bytes() -> tuple[bytes, list[tuple[int, bytes]]]:
    """Masked client frames made by wsproto (sizes across every length encoding, a message
    in three fragments with a ping between them), and what a reader must make of them."""
    client = Connection(ConnectionType.CLIENT)
    wire, expected = b"", []
    for size in (0, 1, 125, 126, 127, 65535, 65536):
        text = ("ü" * size)[: size // 2] + "x" * (size - 2 * (size // 2))
        wire += client.send(TextMessage(data=text))
        expected.append((OP_TEXT, text.encode()))
    wire += client.send(BytesMessage(data=b"\x00\xff" * 10))
    expected.append((OP_BINARY, b"\x00\xff" * 10))
    wire += client.send(TextMessage(data='{"a":', message_finished=False))
    wire += client.send(Ping(payload=b"hi"))
    wire += client.send(TextMessage(data=' "b"', message_finished=False))
    wire += client.send(TextMessage(data="}"))
    expected += [(OP_PING, b"hi"), (OP_TEXT, b'{"a": "b"}')]
    return wire, expected


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 125, 4096, 1 << 20])
def test_wire_frame_reader_cuts_wsproto_client_frames_however_they_arrive(chunk: int) -> None:
    wire, expected = _client_bytes()
    reader = FrameReader(max_message=1 << 20)
    got: list[tuple[int, bytes]] = []
    for i in range(0, len(wire), chunk):
        frames, violation = reader.feed(wire[i : i + chunk])
        assert violation is None
        got += frames
    assert got == expected


def test_wire_frame_reader_refuses_a_message_over_the_limit_from_its_header() -> None:
    client = Connection(ConnectionType.CLIENT)
    head = client.send(TextMessage(data="x" * 1001))[:8]  # the header alone, no payload yet
    frames, violation = FrameReader(max_message=1000).feed(head)
    assert frames == [] and violation is not None and violation.code == 1009


def test_wire_frame_reader_keeps_what_came_before_a_violation() -> None:
    client = Connection(ConnectionType.CLIENT)
    wire = client.send(TextMessage(data="ok")) + bytes([0x81, 0x02]) + b"{}"  # then unmasked
    frames, violation = FrameReader(max_message=1000).feed(wire)
    assert frames == [(OP_TEXT, b"ok")]
    assert violation is not None and violation.code == 1002


@pytest.mark.parametrize(
    ("payload", "outcome"),
    [
        (b"", None),
        ((1000).to_bytes(2, "big") + "bye ✓".encode(), 1000),
        ((3000).to_bytes(2, "big"), 3000),
        ((4999).to_bytes(2, "big"), 4999),
        (b"\x03", 1002),
        ((1006).to_bytes(2, "big"), 1002),
        ((2999).to_bytes(2, "big"), 1002),
        ((5000).to_bytes(2, "big"), 1002),
        ((1000).to_bytes(2, "big") + b"\xc0", 1007),
    ],
)
def test_wire_close_code_follows_rfc_6455(payload: bytes, outcome: int | None) -> None:
    if outcome in (None, 1000, 3000, 4999):
        assert close_code(payload) == outcome
    else:
        with pytest.raises(ProtocolViolation) as caught:
            close_code(payload)
        assert caught.value.code == outcome
