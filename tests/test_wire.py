"""The hand-made wire paths agree with wsproto: server frames parse as the text messages
wsproto would have sent, and client frames wsproto makes are cut into the same messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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

from .abuse_cases import frame


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


@given(
    chunks=st.lists(st.binary(max_size=300), max_size=20),
    max_message=st.integers(min_value=0, max_value=1000),
)
@settings(max_examples=500, deadline=None)
def test_wire_frame_reader_takes_any_bytes_without_raising(
    chunks: list[bytes], max_message: int
) -> None:
    """Whatever a client writes, the reader returns frames and at most one violation (with
    an RFC 6455 code); it never raises, never yields a message over the limit, and keeps
    less than one frame's worth of bytes."""
    reader = FrameReader(max_message=max_message)
    for chunk in chunks:
        frames, violation = reader.feed(chunk)
        for opcode, payload in frames:
            assert opcode in (0x1, 0x2, 0x8, 0x9, 0xA)
            assert len(payload) <= (125 if opcode >= 0x8 else max_message)
        if violation is not None:
            assert violation.code in (1002, 1007, 1009)
            return
        assert len(reader._buf) < 14 + max(max_message, 125)


@given(
    frames=st.lists(
        st.tuples(st.integers(0, 15), st.booleans(), st.binary(max_size=200)), max_size=12
    ),
    cut=st.integers(min_value=1, max_value=64),
)
@settings(max_examples=500, deadline=None)
def test_wire_frame_reader_survives_any_sequence_of_masked_frames(
    frames: list[tuple[int, bool, bytes]], cut: int
) -> None:
    """Well-formed frames in any order (any opcode, fin or not): the reader either cuts them
    into messages no bigger than the limit or names the violation; it never raises."""
    wire = b"".join(frame(opcode, payload, fin=fin) for opcode, fin, payload in frames)
    reader = FrameReader(max_message=300)
    for i in range(0, len(wire), cut):
        got, violation = reader.feed(wire[i : i + cut])
        assert all(len(p) <= (125 if op >= 0x8 else 300) for op, p in got)
        if violation is not None:
            assert violation.code in (1002, 1007, 1009)
            return
