"""Properties of the wire protocol, by hypothesis.

`decode_frame` answers any input with either a client frame that keeps every field rule
of docs/PROTOCOL.md or a `ProtocolError` with a documented code: never another
exception. `encode` round-trips any text through JSON exactly.
"""

from __future__ import annotations

import importlib
import json
import warnings
from contextlib import suppress
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nochat import protocol
from nochat.errors import ProtocolError
from nochat.protocol import (
    CLIENT_ID_RE,
    CLIENT_TYPES,
    MAX_SEQ,
    MESSAGE_ID_RE,
    ROOM_RE,
    STATUS_STATES,
    STATUS_TEXT_MAX,
    Delete,
    Edit,
    Join,
    Leave,
    Pong,
    React,
    Read,
    Send,
    Status,
    Typing,
    decode_frame,
)

# Hypothesis imports libcst (when installed) only to report a failure; libcst 1.0 warns on
# import under a recent mypy_extensions, and filterwarnings=error turns that warning into
# a pytest INTERNALERROR that hides the failure. Import it once here, warning silenced.
with warnings.catch_warnings(), suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    importlib.import_module("libcst.metadata")

PROPERTIES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: The codes docs/PROTOCOL.md gives for a frame that cannot be acted on as sent.
DECODE_CODES = frozenset(
    {"bad_json", "invalid_frame", "unknown_type", "invalid_room", "invalid_status"}
)
FIELDS = ("room", "since", "epoch", "text", "client_id", "seq", "ref")

# ---- strategies -------------------------------------------------------------------------------

#: Integers around every edge the protocol has (2**53, int64, uint64) and beyond.
edge_ints = st.sampled_from(
    [0, 1, -1, MAX_SEQ, MAX_SEQ + 1, -MAX_SEQ, -MAX_SEQ - 1, 2**63 - 1, -(2**63), 2**64, 10**30]
)
ints = st.integers() | edge_ints
json_scalars = (
    st.none() | st.booleans() | ints | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
slugs = st.from_regex(ROOM_RE, fullmatch=True)
client_ids = st.from_regex(CLIENT_ID_RE, fullmatch=True)
#: Strings near the rules: valid, one character off, too long, look-alikes.
near_strings = (
    slugs
    | client_ids
    | slugs.map(str.upper)
    | slugs.map(lambda s: s + "\n")
    | slugs.map(lambda s: "\u0435" + s)
    | st.text(alphabet="abc-_.:/%\u200d\uff41", max_size=70)
    | st.text(min_size=60, max_size=140)
)
field_values = json_values | near_strings | ints
types = st.sampled_from(sorted(CLIENT_TYPES)) | st.sampled_from(["", "JOIN", "ping"]) | json_values
frames = st.fixed_dictionaries({}, optional={"type": types, **dict.fromkeys(FIELDS, field_values)})
#: Frames whose type is real and whose fields are mostly right: the decoder's success path.
plausible_frames = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(CLIENT_TYPES))},
    optional={
        "room": slugs | near_strings,
        "since": st.none() | ints,
        "epoch": st.none() | st.text(max_size=20),
        "text": st.text(max_size=50),
        "client_id": client_ids | near_strings,
        "seq": ints,
        "ref": st.none() | ints | st.text(max_size=140),
    },
)


#: Openers and closers of nesting, and where in a frame the nesting goes.
NESTING = {"[": "]", '{"a":': "}", '[{"a":': "}]"}
PLACES = ("alone", "room", "unknown field")


def deep_json(depth: int, opener: str, place: str) -> str:
    """JSON nested far deeper than any frame needs, alone or inside a real frame."""
    nested = opener * depth + "1" + NESTING[opener] * depth
    if place == "alone":
        return nested
    key = "room" if place == "room" else "x"
    return f'{{"type": "join", "room": "general", "{key}": {nested}}}'


# ---- properties -------------------------------------------------------------------------------


def decodes_or_refuses(data: str | bytes) -> None:
    """The property itself: a frame that keeps the rules, or a ProtocolError."""
    try:
        frame = decode_frame(data)
    except ProtocolError as exc:
        assert exc.code in DECODE_CODES, exc.code
        return
    check_frame(frame)


def valid_ref(ref: object) -> bool:
    if ref is None:
        return True
    if isinstance(ref, str):
        return len(ref) <= 128
    return type(ref) is int and -MAX_SEQ <= ref <= MAX_SEQ


def check_frame(frame: object) -> None:
    assert isinstance(
        frame, Join | Leave | Send | Edit | Delete | React | Typing | Read | Pong | Status
    ), frame
    assert valid_ref(frame.ref), frame
    if isinstance(frame, Pong):
        return
    if isinstance(frame, Status):
        assert frame.state in STATUS_STATES and len(frame.text) <= STATUS_TEXT_MAX, frame
        return
    if isinstance(frame, Edit | Delete | React):
        assert CLIENT_ID_RE.fullmatch(frame.client_id) and MESSAGE_ID_RE.fullmatch(frame.id)
    assert isinstance(frame.room, str) and ROOM_RE.fullmatch(frame.room), frame
    if isinstance(frame, Send):
        assert isinstance(frame.text, str), frame
        assert isinstance(frame.client_id, str) and CLIENT_ID_RE.fullmatch(frame.client_id), frame
    if isinstance(frame, Join):
        assert frame.since is None or (type(frame.since) is int and 0 <= frame.since <= MAX_SEQ)
        assert frame.epoch is None or isinstance(frame.epoch, str), frame
    if isinstance(frame, Read):
        assert type(frame.seq) is int and 0 <= frame.seq <= MAX_SEQ, frame


@PROPERTIES
@given(st.binary(max_size=512))
def test_protocol_property_any_bytes(data: bytes) -> None:
    decodes_or_refuses(data)


@PROPERTIES
@given(st.text(max_size=512))
def test_protocol_property_any_text(data: str) -> None:
    decodes_or_refuses(data)


@PROPERTIES
@given(json_values)
def test_protocol_property_any_json_value(value: Any) -> None:
    decodes_or_refuses(json.dumps(value))


@PROPERTIES
@given(frames)
def test_protocol_property_any_frame_shaped_object(frame: dict[str, Any]) -> None:
    decodes_or_refuses(json.dumps(frame))


@PROPERTIES
@given(plausible_frames)
def test_protocol_property_plausible_frames_decode_to_what_was_sent(frame: dict[str, Any]) -> None:
    text = json.dumps(frame)
    decodes_or_refuses(text)
    try:
        decoded = decode_frame(text)
    except ProtocolError:
        return
    assert decoded.ref == frame.get("ref")
    for name in FIELDS:
        if name in frame and hasattr(decoded, name):
            assert getattr(decoded, name) == frame[name], name


@PROPERTIES
@given(st.integers(1, 20_000), st.sampled_from(sorted(NESTING)), st.sampled_from(PLACES))
def test_protocol_property_deep_nesting_is_refused_not_raised(
    depth: int, opener: str, place: str
) -> None:
    text = deep_json(depth, opener, place)
    decodes_or_refuses(text)
    decodes_or_refuses(text.encode())


@PROPERTIES
@given(st.binary(max_size=64).map(lambda b: b'{"type": "send", "text": "' + b + b'"}'))
def test_protocol_property_invalid_utf8_bytes_are_refused(data: bytes) -> None:
    decodes_or_refuses(data)


@PROPERTIES
@given(st.text(alphabet=st.characters(codec=None, categories=["Cs", "Ll"]), max_size=40))
def test_protocol_property_text_with_lone_surrogates_is_refused(text: str) -> None:
    """A str may hold lone surrogates (no text frame can): still only a ProtocolError."""
    decodes_or_refuses('{"type": "pong", "ref": "' + text + '"}')


@PROPERTIES
@given(frames)
def test_protocol_property_error_echoes_only_a_valid_ref(frame: dict[str, Any]) -> None:
    """An `error` echoes `ref` only when it keeps the ref rules (≤128 chars, |n| ≤ 2**53-1)."""
    try:
        decode_frame(json.dumps(frame))
    except protocol.FrameError as exc:
        assert valid_ref(exc.ref), exc.ref


@PROPERTIES
@given(st.text(alphabet=st.characters(codec="utf-8")), st.text(max_size=20))
def test_protocol_property_encode_round_trips_any_text(text: str, user: str) -> None:
    event = protocol.message_event("general", "id", 1, user, text, 1, "c")
    assert json.loads(protocol.encode(event)) == event
    error = protocol.error_event("bad_json", text, ref=text[:128] or None)
    assert json.loads(protocol.encode(error)) == error
    batch = protocol.batch([protocol.encode(event), protocol.encode(error)])
    assert json.loads(batch) == [event, error]
