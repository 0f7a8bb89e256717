"""RFC 6455 behaviours NoChat's own frame reader decides, unit by unit and over a real socket.

tests/test_wire.py checks the reader against wsproto and tests/test_abuse.py the close
code of each malformed frame; this file adds what those do not cover.
"""

from __future__ import annotations

import pytest

from nochat.wire import OP_CONTINUATION, OP_PING, OP_TEXT, FrameReader

from .abuse_cases import INVALID_PAYLOAD, Wire, frame
from .support import Api, RunningServer
from .test_abuse import raw_socket

EURO = "€".encode()  # three bytes: e2 82 ac


def _feed(reader: FrameReader, *frames: bytes) -> list[tuple[list[tuple[int, bytes]], int | None]]:
    """What the reader makes of each frame, fed one at a time: (frames, violation code)."""
    out = []
    for data in frames:
        got, violation = reader.feed(data)
        out.append((got, None if violation is None else violation.code))
    return out


def test_rfc6455_invalid_utf8_fails_at_the_fragment_that_makes_it_invalid() -> None:
    reader = FrameReader(max_message=1000)
    first = frame(OP_TEXT, b'"ok', fin=False)
    bad = frame(OP_CONTINUATION, b"\xff", fin=False)  # never valid, whatever follows
    assert _feed(reader, first, bad) == [([], None), ([], INVALID_PAYLOAD)]


def test_rfc6455_code_point_split_across_fragments_is_fine() -> None:
    reader = FrameReader(max_message=1000)
    parts = [
        frame(OP_TEXT, b'"' + EURO[:1], fin=False),
        frame(OP_CONTINUATION, EURO[1:2], fin=False),
        frame(OP_PING, b"p"),
        frame(OP_CONTINUATION, EURO[2:] + b'"'),
    ]
    assert _feed(reader, *parts) == [
        ([], None),
        ([], None),
        ([(OP_PING, b"p")], None),
        ([(OP_TEXT, b'"' + EURO + b'"')], None),
    ]


def test_rfc6455_a_code_point_cut_short_by_the_final_fragment_is_1007() -> None:
    reader = FrameReader(max_message=1000)
    parts = [frame(OP_TEXT, b'"' + EURO[:2], fin=False), frame(OP_CONTINUATION, b"", fin=True)]
    assert _feed(reader, *parts) == [([], None), ([], INVALID_PAYLOAD)]


def test_rfc6455_a_fragment_that_breaks_a_started_code_point_is_1007() -> None:
    reader = FrameReader(max_message=1000)
    parts = [frame(OP_TEXT, EURO[:2], fin=False), frame(OP_CONTINUATION, b"A", fin=False)]
    assert _feed(reader, *parts) == [([], None), ([], INVALID_PAYLOAD)]


def test_rfc6455_binary_fragments_are_not_checked_as_text() -> None:
    reader = FrameReader(max_message=1000)
    parts = [frame(0x2, b"\xff", fin=False), frame(OP_CONTINUATION, b"\xfe")]
    assert _feed(reader, *parts) == [([], None), ([(0x2, b"\xff\xfe")], None)]


def test_rfc6455_next_text_after_a_fragmented_one_starts_a_fresh_check() -> None:
    reader = FrameReader(max_message=1000)
    parts = [
        frame(OP_TEXT, EURO[:1], fin=False),
        frame(OP_CONTINUATION, EURO[1:]),
        frame(OP_TEXT, EURO[:2], fin=False),
        frame(OP_CONTINUATION, EURO[2:]),
    ]
    got = _feed(reader, *parts)
    assert got == [([], None), ([(OP_TEXT, EURO)], None), ([], None), ([(OP_TEXT, EURO)], None)]


async def test_rfc6455_server_closes_1007_before_the_final_fragment(
    server: RunningServer, api: Api
) -> None:
    ann = await api.signup("ann")
    async with raw_socket(server, ann.token) as sock:
        await sock.send_json(type="join", room="general", ref="j")
        assert (await sock.reply())["type"] == "joined"
        await sock.send(Wire(frame(OP_TEXT, b'{"type": "pong', fin=False)))
        bad = frame(OP_CONTINUATION, b"\xc0\xaf", fin=False)  # and no final fragment
        await sock.send(Wire(bad))
        assert await sock.reply() == {"close": INVALID_PAYLOAD}


@pytest.mark.parametrize("split", [1, 2])
async def test_rfc6455_server_takes_a_code_point_split_across_fragments(
    server: RunningServer, api: Api, split: int
) -> None:
    ann = await api.signup("ann")
    text = '{"type": "send", "room": "general", "text": "€", "client_id": "c", "ref": "r"}'
    data = text.encode()
    cut = data.index(EURO) + split
    async with raw_socket(server, ann.token) as sock:
        await sock.send_json(type="join", room="general", ref="j")
        assert (await sock.reply())["type"] == "joined"
        await sock.send(
            Wire(frame(OP_TEXT, data[:cut], fin=False) + frame(OP_CONTINUATION, data[cut:]))
        )
        ack = await sock.reply()
        assert (ack["type"], ack["ref"]) == ("ack", "r")
