"""The abuse tables: hostile frames, strings and names, each with its documented answer.

`tests/test_abuse.py` throws every row at a live server. A row's `reply` is what the
first answer to the frame must contain (`None` for `ref` means "no ref in the reply"),
or `{"close": code}` when the server must close the socket. docs/PROTOCOL.md is the
source of every expectation.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

#: A text frame's payload, a binary frame's payload, or bytes written to the wire as they are.
Frame = str | bytes


@dataclass(frozen=True)
class Wire:
    """Hand-made WebSocket frames (masked, as a client must) written straight to the socket."""

    data: bytes
    #: The text of the message these frames send, if they make a valid `send`.
    text: str | None = None


@dataclass(frozen=True)
class Case:
    name: str
    frame: Frame | Wire
    reply: dict[str, Any]


def error(code: str, ref: str | int | None = None) -> dict[str, Any]:
    return {"type": "error", "code": code, "ref": ref}


def close(code: int) -> dict[str, Any]:
    return {"close": code}


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One client-to-server frame as RFC 6455 §5.2 lays it out, masked with a random key."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


TEXT, BINARY, CONTINUATION = 0x1, 0x2, 0x0
#: docs/PROTOCOL.md: frames over 64 KiB close the socket with 1009.
MAX_FRAME_BYTES = 64 * 1024
#: RFC 6455 §7.4.1 close codes NoChat's frame reader sends (docs/PROTOCOL.md).
PROTOCOL_ERROR = 1002
INVALID_PAYLOAD = 1007
TOO_BIG = 1009
PING, PONG, CLOSE = 0x9, 0xA, 0x8
SQL = "'; DROP TABLE messages; --"
DEPTH = 10_000


def _join(**extra: Any) -> str:
    return json.dumps({"type": "join", "room": "general", **extra})


def _padded_send(total_bytes: int, client_id: str) -> str:
    """A valid `send` whose JSON is exactly `total_bytes` long (an ignored field pads it)."""
    frame = {"type": "send", "room": "general", "text": "edge", "client_id": client_id}
    frame["pad"] = ""
    frame["pad"] = "x" * (total_bytes - len(json.dumps(frame)))
    text = json.dumps(frame)
    assert len(text) == total_bytes
    return text


# ---- malformed JSON, deep nesting, numbers --------------------------------------------------

INVALID_JSON = [
    Case("truncated object", "{", error("bad_json")),
    Case("stray brace", "}", error("bad_json")),
    Case("single quotes", "{'type': 'join', 'room': 'general'}", error("bad_json")),
    Case("trailing comma", '{"type": "join", "room": "general",}', error("bad_json")),
    Case("bare word", "join", error("bad_json")),
    Case("NaN", '{"type": "pong", "ref": NaN}', error("bad_json")),
    Case("comment", '/* hi */ {"type": "pong"}', error("bad_json")),
    Case("byte order mark", '\ufeff{"type": "pong"}', error("bad_json")),
    Case("trailing NUL", '{"type": "pong"}\x00', error("bad_json")),
    Case("two objects", '{"type": "pong"}{"type": "pong"}', error("bad_json")),
    Case("whitespace only", " \n\t ", error("bad_json")),
    Case("unterminated string", '{"type": "join", "room": "gene', error("bad_json")),
    Case(
        "raw control char in string", '{"type": "join", "room": "gen\x01eral"}', error("bad_json")
    ),
    Case("lone surrogate escape", '{"type": "send", "text": "\\ud800"}', error("bad_json")),
    Case("unclosed arrays", "[" * DEPTH, error("bad_json")),
]

NOT_AN_OBJECT = [
    Case("array", "[]", error("invalid_frame")),
    Case("batch of frames", f"[{_join()}]", error("invalid_frame")),
    Case("string", '"join"', error("invalid_frame")),
    Case("number", "7", error("invalid_frame")),
    Case("null", "null", error("invalid_frame")),
    Case("true", "true", error("invalid_frame")),
]

# Nesting this deep is past any sane parser limit, so `bad_json` is the answer
# (as for numbers out of range): what matters is an error frame, not a crash.
DEEP = [
    Case("deep arrays", "[" * DEPTH + "]" * DEPTH, error("bad_json")),
    Case("deep objects", '{"a":' * DEPTH + "1" + "}" * DEPTH, error("bad_json")),
    Case("deep mixed", '[{"a":' * (DEPTH // 2) + "1" + "}]" * (DEPTH // 2), error("bad_json")),
    Case(
        "deep value in room",
        '{"type": "join", "room": ' + "[" * DEPTH + "]" * DEPTH + "}",
        error("bad_json"),
    ),
    Case(
        "deep value in an unknown field",
        '{"type": "join", "room": "general", "x": ' + '{"a":' * DEPTH + "1" + "}" * DEPTH + "}",
        error("bad_json"),
    ),
]

_OUT_OF_RANGE = [2**64, -(2**63), 2**53, -1]
HUGE_NUMBERS = [
    # 1e400 overflows a double: tests/e2e/test_bad_input.py and protocol.py answer
    # bad_json ("not valid JSON, or a number out of range"), so the ref is unreadable.
    Case(
        "since 1e400",
        '{"type": "join", "room": "general", "since": 1e400, "ref": "r"}',
        error("bad_json"),
    ),
    Case(
        "seq 1e400",
        '{"type": "read", "room": "general", "seq": 1e400, "ref": "r"}',
        error("bad_json"),
    ),
    Case("ref 1e400", '{"type": "pong", "ref": 1e400}', error("bad_json")),
    Case(
        "since 10**5000",
        '{"type": "join", "room": "general", "since": 1' + "0" * 5000 + "}",
        error("bad_json"),
    ),
    *[
        Case(f"since {n}", _join(since=n, ref="r"), error("invalid_frame", "r"))
        for n in _OUT_OF_RANGE
    ],
    *[
        Case(
            f"seq {n}",
            json.dumps({"type": "read", "room": "general", "seq": n, "ref": "r"}),
            error("invalid_frame", "r"),
        )
        for n in _OUT_OF_RANGE
    ],
    *[
        Case(f"ref {n}", json.dumps({"type": "pong", "ref": n}), error("invalid_frame"))
        for n in _OUT_OF_RANGE[:3]
    ],
    Case("ref -(2**53)", json.dumps({"type": "pong", "ref": -(2**53)}), error("invalid_frame")),
    Case("ref 129 chars", json.dumps({"type": "pong", "ref": "x" * 129}), error("invalid_frame")),
    # The edges that are fine: since = 2**53-1 is past head_seq, which the protocol answers
    # with `reset`; a 128-character ref is echoed.
    Case(
        "since 2**53-1",
        _join(since=2**53 - 1, ref=2**53 - 1),
        {"type": "reset", "room": "general", "ref": 2**53 - 1},
    ),
    Case("ref 128 chars", _join(ref="x" * 128), {"type": "joined", "ref": "x" * 128}),
    Case("ref -(2**53-1)", _join(ref=-(2**53 - 1)), {"type": "joined", "ref": -(2**53 - 1)}),
]

# ---- types ------------------------------------------------------------------------------------

#: Each client frame type's fields (besides `ref`) and a valid value for each.
FIELDS: dict[str, dict[str, Any]] = {
    "join": {"room": "general", "since": 0, "epoch": "e"},
    "leave": {"room": "general"},
    "send": {"room": "general", "text": "hello", "client_id": "c1"},
    "typing": {"room": "general"},
    "read": {"room": "general", "seq": 0},
    "pong": {},
}
_OPTIONAL = {"since", "epoch"}
_WRONG_FOR_STR: list[Any] = [5, -1.5, True, [], {}, ["general"], {"room": "general"}]
_WRONG_FOR_INT: list[Any] = ["1", 1.0, 1.5, True, False, [], {}, {"n": 1}]
_WRONG_FOR_REF: list[Any] = [1.5, True, False, [], {}, ["r"], {"ref": 1}]


def wrong_type_cases() -> list[Case]:
    """Every field of every client frame type, given each value of a wrong JSON type."""
    cases = []
    for kind, fields in FIELDS.items():
        for name, good in fields.items():
            wrong = list(_WRONG_FOR_INT if isinstance(good, int) else _WRONG_FOR_STR)
            if name not in _OPTIONAL:
                wrong.append(None)
            for i, value in enumerate(wrong):
                ref = f"{kind}-{name}-{i}"
                body = {"type": kind, **fields, name: value, "ref": ref}
                label = f"{kind}.{name}={json.dumps(value)}"
                cases.append(Case(label, json.dumps(body), error("invalid_frame", ref)))
        for value in _WRONG_FOR_REF:
            body = {"type": kind, **fields, "ref": value}
            label = f"{kind}.ref={json.dumps(value)}"
            cases.append(Case(label, json.dumps(body), error("invalid_frame")))
    return cases


_UNKNOWN_TYPES: list[Any] = [
    "JOIN", "join ", " join", "", "message", "ack", "ping", "error", "joined",
    "__proto__", "constructor", "send\u0000", "j\u043ein", None, 7, True, [], {}, ["join"],
]  # fmt: skip

UNKNOWN_TYPES = [
    Case(
        f"type={json.dumps(t)}",
        json.dumps({"type": t, "room": "general", "ref": "u"}),
        error("unknown_type", "u"),
    )
    for t in _UNKNOWN_TYPES
] + [
    Case("no type", json.dumps({"room": "general", "ref": "u"}), error("unknown_type", "u")),
    # An error echoes only a ref that follows the ref rules (as a frame's own ref must).
    Case("unknown type, 129-char ref", json.dumps({"type": "x", "ref": "r" * 129}),
         error("unknown_type")),
    Case("unknown type, ref 2**64", json.dumps({"type": "x", "ref": 2**64}), error("unknown_type")),
    Case("mistyped room, ref 2**53", json.dumps({"type": "join", "room": 5, "ref": 2**53}),
         error("invalid_frame")),
]  # fmt: skip

# ---- what is not a JSON text frame -------------------------------------------------------------

_BAD_UTF8 = {
    "invalid byte 0xff": b'{"type": "send", "room": "general", "text": "\xff", "client_id": "u"}',
    "overlong slash": b'"\xc0\xaf"',
    "encoded surrogate": b'"\xed\xa0\x80"',
    "truncated sequence": b'"\xe2\x82"',
    "beyond U+10FFFF": b'"\xf4\x90\x80\x80"',
}

FRAMES = [
    Case("binary", b"\x00\x01binary", error("unsupported_frame")),
    Case("binary JSON", _join().encode(), error("unsupported_frame")),
    Case("empty binary", b"", error("unsupported_frame")),
    # docs/PROTOCOL.md: `unsupported_frame` is "a binary (or empty) frame".
    Case("empty text", "", error("unsupported_frame")),
    *[Case(f"invalid UTF-8: {k}", Wire(frame(TEXT, v)), close(INVALID_PAYLOAD))
      for k, v in _BAD_UTF8.items()],
    Case("invalid UTF-8 across fragments",
         Wire(frame(TEXT, b'"\xe2\x82', fin=False) + frame(CONTINUATION, b'A"')),
         close(INVALID_PAYLOAD)),
    Case("text over 64 KiB", _padded_send(MAX_FRAME_BYTES + 1, "big"), close(TOO_BIG)),
    Case("binary over 64 KiB", b"x" * (MAX_FRAME_BYTES + 1), close(TOO_BIG)),
    Case("fragments adding up to over 64 KiB",
         Wire(frame(TEXT, b" " * MAX_FRAME_BYTES, fin=False) + frame(CONTINUATION, b"{}")),
         close(TOO_BIG)),
    Case("exactly 64 KiB is fine", _padded_send(MAX_FRAME_BYTES, "edge"),
         {"type": "ack", "client_id": "edge"}),
]  # fmt: skip

_SEND = b'{"type": "send", "room": "general", "text": "in pieces", "client_id": "frag"}'

#: Frames that break RFC 6455 itself: the connection closes with the RFC's code.
PROTOCOL = [
    Case("unmasked frame", Wire(bytes([0x81, 2]) + b"{}"), close(PROTOCOL_ERROR)),
    Case("reserved bit set", Wire(frame(0x40 | TEXT, b"{}")), close(PROTOCOL_ERROR)),
    Case("unknown data opcode", Wire(frame(0x3, b"{}")), close(PROTOCOL_ERROR)),
    Case("unknown control opcode", Wire(frame(0xB, b"")), close(PROTOCOL_ERROR)),
    Case("continuation of nothing", Wire(frame(CONTINUATION, b"{}")), close(PROTOCOL_ERROR)),
    Case("new text inside a fragmented one",
         Wire(frame(TEXT, b'"a', fin=False) + frame(TEXT, b'"')), close(PROTOCOL_ERROR)),
    Case("fragmented ping", Wire(frame(PING, b"x", fin=False)), close(PROTOCOL_ERROR)),
    Case("ping over 125 bytes", Wire(frame(PING, b"x" * 126)), close(PROTOCOL_ERROR)),
    Case("64-bit length with the top bit set",
         Wire(bytes([0x81, 0xFF]) + (1 << 63).to_bytes(8, "big") + b"mask"), close(TOO_BIG)),
    Case("close of one byte", Wire(frame(CLOSE, b"\x03")), close(PROTOCOL_ERROR)),
    Case("close with code 1005", Wire(frame(CLOSE, (1005).to_bytes(2, "big"))),
         close(PROTOCOL_ERROR)),
    Case("close with code 999", Wire(frame(CLOSE, (999).to_bytes(2, "big"))),
         close(PROTOCOL_ERROR)),
    Case("close reason not UTF-8", Wire(frame(CLOSE, (1000).to_bytes(2, "big") + b"\xff")),
         close(INVALID_PAYLOAD)),
    Case("close 1000 is answered with 1000", Wire(frame(CLOSE, (1000).to_bytes(2, "big"))),
         close(1000)),
    Case("close 4321 is answered with 4321", Wire(frame(CLOSE, (4321).to_bytes(2, "big"))),
         close(4321)),
    Case("a ping between fragments: the message still arrives whole",
         Wire(frame(TEXT, _SEND[:20], fin=False) + frame(PING, b"p")
              + frame(CONTINUATION, _SEND[20:50], fin=False) + frame(CONTINUATION, _SEND[50:]),
              text="in pieces"),
         {"type": "ack", "client_id": "frag"}),
]  # fmt: skip

ALL_FRAME_CASES: list[Case] = [
    *INVALID_JSON,
    *NOT_AN_OBJECT,
    *DEEP,
    *HUGE_NUMBERS,
    *wrong_type_cases(),
    *UNKNOWN_TYPES,
    *FRAMES,
    *PROTOCOL,
]

# ---- strings --------------------------------------------------------------------------------

#: Message texts that must be stored and returned exactly, never interpreted.
HOSTILE_TEXTS: dict[str, str] = {
    # NUL is refused (nul_in_text: PostgreSQL cannot store it); every other C0 control is kept.
    "C0 controls": "a\x01b\x02\x07\x08\x0b\x0c\x7fc",
    "terminal escapes": "\x1b[2J\x1b[31mred\x1b]0;title\x07",
    "CR LF tab": "line1\r\nline2\n\tindented\r",
    "line and paragraph separators": "a\u2028b\u2029c\x85d",
    "script tag": "<script>alert(document.cookie)</script>",
    "img onerror": '<img src=x onerror="alert(1)">',
    "closing tags": "</textarea></div></script><!--",
    "HTML entities": "&lt;b&gt; &amp;amp; &#x3C;",
    "javascript URL": "javascript:alert(1)",
    "quotes and template": "\"'`${7*7}{{7*7}}<%= 7 %>",
    "backslashes": "\\u0000 \\n \\\\ \\",
    "format strings": "%s%n%x {0} {name!r}",
    "SQL": SQL,
    "SQL in quotes": "Robert'); DROP TABLE users;--",
    "bidi override": "\u202egnp.exe\u202c",
    "zero width": "a\u200b\u200c\u200d\u2060\ufeffb",
    "emoji ZWJ": "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "astral": "\U0001d54f \U00010348 \U0010fffd",
    "combining marks": "e" + "\u0301" * 50,
    "noncharacters": "\ufffe\uffff\U0001ffff",
    "JSON in text": '{"type": "join", "room": "general"}',
    "max length of angle brackets": "<" * 4000,
    "max length astral": "\U0001f4a9" * 4000,
}

#: Room names that are not slugs: path tricks, look-alikes, invisible characters.
BAD_ROOM_NAMES: dict[str, str] = {
    "dot dot slash": "../",
    "dot dot": "..",
    "dot": ".",
    "encoded dot dot": "%2e%2e",
    "encoded slash": "general%2F..%2Fgeneral",
    "slash traversal": "general/../x",
    "slash back to itself": "general/../general",
    "backslash": "..\\general",
    "absolute": "/etc/passwd",
    "cyrillic e": "g\u0435neral",
    "fullwidth": "\uff47\uff45\uff4e\uff45\uff52\uff41\uff4c",
    "zero width joiner": "gen\u200deral",
    "zero width space": "\u200bgeneral",
    "kelvin sign": "\u212aelvin",
    "upper case": "GENERAL",
    "trailing newline": "general\n",
    "trailing space": "general ",
    "NUL inside": "gen\x00eral",
    "query": "general?x=1",
    "fragment": "general#x",
    "SQL": SQL,
    "65 characters": "g" * 65,
}

_DEEP_FIELD = b'"x": ' + b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
_PASSWORD = b'"password": "long enough"'

#: REST request bodies that must be answered 400 `invalid` (path, raw body).
BAD_BODIES: dict[str, tuple[str, bytes]] = {
    "signup name not UTF-8": ("/api/users", b'{"name": "\xff", ' + _PASSWORD + b"}"),
    "login name not UTF-8": ("/api/sessions", b'{"name": "a\xc0\xaf", ' + _PASSWORD + b"}"),
    "message text not UTF-8": (
        "/api/rooms/general/messages",
        b'{"text": "\xed\xa0\x80", "client_id": "c"}',
    ),
    "body not UTF-8": ("/api/rooms", b"\xff\xfe"),
    "lone surrogate escape": (
        "/api/rooms/general/messages",
        b'{"text": "\\ud800", "client_id": "c"}',
    ),
    "deep arrays in text": (
        "/api/rooms/general/messages",
        b'{"text": ' + b"[" * DEPTH + b"]" * DEPTH + b', "client_id": "c"}',
    ),
    "deep objects in an unknown field": (
        "/api/rooms/general/messages",
        b"{" + _DEEP_FIELD + b', "text": "t", "client_id": "c"}',
    ),
    "deep objects as the body": ("/api/rooms", b'{"a":' * DEPTH + b"1" + b"}" * DEPTH),
    "name 1e400": ("/api/rooms", b'{"name": 1e400}'),
    "client_id 2**64": (
        "/api/rooms/general/messages",
        b'{"text": "t", "client_id": 18446744073709551616}',
    ),
}
