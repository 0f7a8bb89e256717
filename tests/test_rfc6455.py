"""RFC 6455 behaviours NoChat's own frame reader decides, unit by unit and over a real socket.

tests/test_wire.py checks the reader against wsproto and tests/test_abuse.py the close
code of each malformed frame; this file adds what those do not cover.
"""

from __future__ import annotations

import pytest

from nochat.wire import OP_CONTINUATION, OP_PING, OP_TEXT, FrameReader

from .abuse_cases import INVALID_PAYLOAD, MAX_FRAME_BYTES, Wire, frame
from .rawsocket import raw_socket
from .support import Api, RunningServer

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


# ---- over a real socket: what tests/test_abuse.py's tables leave out ---------------------------

CLOSE, PONG = 0x8, 0xA
_PING_TEXT = b'{"type": "pong"}'


def _close(code: int, reason: bytes = b"") -> bytes:
    return frame(CLOSE, code.to_bytes(2, "big") + reason)


def _masked_with_length(opcode: int, payload: bytes, length_bytes: int) -> bytes:
    """A masked frame whose length uses the 16-bit (2) or 64-bit (8) form, however short."""
    marker = 126 if length_bytes == 2 else 127
    key = b"\x01\x02\x03\x04"
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    head = bytes([0x80 | opcode, 0x80 | marker]) + len(payload).to_bytes(length_bytes, "big")
    return head + key + masked


#: (name, bytes, the close code the server must answer with).
CLOSING = [
    *[(f"close code {c}", _close(c), 1002) for c in (0, 999, 1004, 1005, 1006, 1015, 1016)],
    *[(f"close code {c}", _close(c), 1002) for c in (2000, 2999, 5000, 65535)],
    *[(f"close code {c} is echoed", _close(c), c) for c in (1000, 1001, 1003, 1011, 3000, 4999)],
    ("close reason cut mid code point", _close(1000, "é".encode()[:1]), 1007),
    ("close with a UTF-8 reason", _close(1000, "ça va ✓".encode()), 1000),
    ("close without a code", frame(CLOSE, b""), 1005),  # answered with no code either
    ("close over 125 bytes", frame(CLOSE, (1000).to_bytes(2, "big") + b"x" * 124), 1002),
    ("fragmented close", frame(CLOSE, (1000).to_bytes(2, "big"), fin=False), 1002),
    ("pong over 125 bytes", frame(PONG, b"x" * 126), 1002),
    ("fragmented pong", frame(PONG, b"x", fin=False), 1002),
    *[(f"RSV bit {bit:#x}", frame(bit | OP_TEXT, b"{}"), 1002) for bit in (0x10, 0x20, 0x40)],
    *[(f"reserved opcode {op:#x}", frame(op, b""), 1002) for op in (*range(3, 8), *range(11, 16))],
    ("close between fragments",
     frame(OP_TEXT, b'{"ty', fin=False) + _close(1000), 1000),
    ("unmasked close", bytes([0x88, 2]) + (1000).to_bytes(2, "big"), 1002),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data", "code"), CLOSING, ids=[c[0] for c in CLOSING])
async def test_rfc6455_close_codes(
    server: RunningServer, api: Api, name: str, data: bytes, code: int
) -> None:
    ann = await api.signup("ann")
    async with raw_socket(server, ann.token) as sock:
        await sock.send(Wire(data))
        assert await sock.reply() == {"close": code}, name


#: Frames that must leave the connection open and usable: (name, bytes).
ACCEPTED = [
    ("16-bit length", _masked_with_length(OP_TEXT, _PING_TEXT + b" " * 200, 2)),
    ("64-bit length (64 KiB, the limit)",
     _masked_with_length(OP_TEXT, _PING_TEXT.ljust(MAX_FRAME_BYTES), 8)),
    ("16-bit length of a short payload (not minimal)", _masked_with_length(OP_TEXT, _PING_TEXT, 2)),
    ("64-bit length of a short payload (not minimal)", _masked_with_length(OP_TEXT, _PING_TEXT, 8)),
    ("an unsolicited pong", frame(PONG, b"whatever")),
    ("an empty ping", frame(OP_PING, b"")),
    ("a pong between fragments",
     frame(OP_TEXT, b'{"type":', fin=False) + frame(PONG, b"")
     + frame(OP_CONTINUATION, b' "pong"}')),
    ("empty fragments", frame(OP_TEXT, b"", fin=False) + frame(OP_CONTINUATION, b"", fin=False)
     + frame(OP_CONTINUATION, _PING_TEXT)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
async def test_rfc6455_accepted_frames_keep_the_connection(
    server: RunningServer, api: Api, name: str, data: bytes
) -> None:
    ann = await api.signup("ann")
    async with raw_socket(server, ann.token) as sock:
        await sock.send(Wire(data))
        await sock.send_json(type="join", room="general", ref="j")
        reply = await sock.reply()
        assert (reply.get("type"), reply.get("ref")) == ("joined", "j"), (name, reply)


async def test_rfc6455_pings_are_answered_in_order_with_their_payloads(
    server: RunningServer, api: Api
) -> None:
    ann = await api.signup("ann")
    payloads = [b"", b"a", bytes(range(125)), "✓".encode()]
    async with raw_socket(server, ann.token) as sock:
        await sock.send(Wire(b"".join(frame(OP_PING, p) for p in payloads)))
        await sock.send_json(type="join", room="general", ref="j")
        assert (await sock.reply())["type"] == "joined"
    assert sock.pongs == payloads
