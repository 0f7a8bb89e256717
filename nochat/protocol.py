"""Wire protocol v1: the frames as msgspec Structs, one decoder, one encoder.

Client frames are a tagged union on "type". `decode_frame` turns any text into
either one of them or a `ProtocolError` with a stable code; nothing else escapes.
Server events are encoded once (`encode`) and the resulting string is shared by
every subscriber's outbox.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from .errors import ProtocolError, ValidationError
from .text import visible

SUBPROTOCOL: Final = "nochat.v1"
BEARER_SUBPROTOCOL_PREFIX: Final = "bearer."
ROOM_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: client_id: what a client chooses to make a send idempotent (UUIDs fit easily).
CLIENT_ID_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_SEQ: Final = 2**53 - 1  # what a browser can hold exactly

Ref = str | int | None


class _Frame(msgspec.Struct, tag_field="type", forbid_unknown_fields=False, omit_defaults=True):
    ref: Ref = None


class Join(_Frame, tag="join"):
    room: str = ""
    since: int | None = None
    epoch: str | None = None


class Leave(_Frame, tag="leave"):
    room: str = ""


class Send(_Frame, tag="send"):
    room: str = ""
    text: str = ""
    client_id: str = ""
    reply_to: str | None = None
    #: File ids (uploaded with POST /api/rooms/{room}/files) the message carries.
    attachments: list[str] = []


class Edit(_Frame, tag="edit"):
    room: str = ""
    id: str = ""
    text: str = ""
    client_id: str = ""


class Delete(_Frame, tag="delete"):
    room: str = ""
    id: str = ""
    client_id: str = ""


class React(_Frame, tag="react"):
    room: str = ""
    id: str = ""
    emoji: str = ""
    on: bool = True
    client_id: str = ""


#: The frames that change a message: each an event in the room's log, acked like a send.
Change = Edit | Delete | React


class Typing(_Frame, tag="typing"):
    room: str = ""


class Read(_Frame, tag="read"):
    room: str = ""
    seq: int = 0


class Pong(_Frame, tag="pong"):
    pass


class Status(_Frame, tag="status"):
    state: str = ""
    text: str = ""


#: What a user may say they are (`offline` is the server's to say).
STATUS_STATES: Final = frozenset({"online", "away", "busy"})
#: Longest status text, in characters.
STATUS_TEXT_MAX: Final = 100


ClientFrame = Join | Leave | Send | Edit | Delete | React | Typing | Read | Pong | Status
CLIENT_TYPES: Final = frozenset(
    {"join", "leave", "send", "edit", "delete", "react", "typing", "read", "pong", "status"}
)
#: A message id as the server makes them (store.new_id): 24 lower-case hex digits.
MESSAGE_ID_RE: Final = re.compile(r"[0-9a-f]{1,64}")

_decoder = msgspec.json.Decoder(ClientFrame)
_loose = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def decode_frame(data: str | bytes) -> ClientFrame:
    """Decode one client frame; raise ProtocolError (with `.ref` when known) on anything bad."""
    try:
        frame: ClientFrame = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise _explain(data, exc) from None
    except UNDECODABLE:
        raise _bad_json() from None
    _check(frame)
    return frame


#: What else msgspec raises on hostile input: ~1,000 levels of nesting inside a field it
#: skips or decodes loosely (RecursionError), bytes that are not UTF-8, lone surrogates.
UNDECODABLE: Final = (RecursionError, UnicodeError)


def _explain(data: str | bytes, exc: msgspec.DecodeError) -> ProtocolError:
    """Work out which stable code a frame that failed to decode deserves (error path only)."""
    try:
        loose = _loose.decode(data)
    except (msgspec.DecodeError, *UNDECODABLE):
        return _bad_json()
    if not isinstance(loose, dict):
        return FrameError("invalid_frame", "frame must be a JSON object", None)
    ref = loose.get("ref")
    ref = ref if _valid_ref(ref) else None
    kind = loose.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        return FrameError("unknown_type", f"unknown frame type {kind!r}"[:200], ref)
    return FrameError("invalid_frame", str(exc)[:200], ref)


class FrameError(ProtocolError):
    """A client frame that cannot be acted on; `ref` echoes the frame's ref when readable."""

    def __init__(self, code: str, message: str, ref: Ref) -> None:
        super().__init__(message, code=code)
        self.ref = ref


def _bad_json() -> FrameError:
    return FrameError("bad_json", "frame is not valid JSON (or a number is out of range)", None)


def _valid_ref(ref: object) -> bool:
    """A ref the server may echo: a string of at most 128 characters or a safe integer."""
    if isinstance(ref, str):
        return len(ref) <= 128
    return isinstance(ref, int) and not isinstance(ref, bool) and -MAX_SEQ <= ref <= MAX_SEQ


def _check(frame: ClientFrame) -> None:
    """Field rules msgspec's types cannot express."""
    if frame.ref is not None and not _valid_ref(frame.ref):
        raise FrameError(
            "invalid_frame",
            "ref must be a string of at most 128 characters or a safe integer",
            None,
        )
    if isinstance(frame, Pong):
        return
    if isinstance(frame, Status):
        require_status(frame.state, frame.text, frame.ref)
        return
    if not valid_room(frame.room):
        raise FrameError("invalid_room", "room must match [a-z0-9][a-z0-9_-]{0,63}", frame.ref)
    if isinstance(frame, (Send, Edit, Delete, React)) and not CLIENT_ID_RE.fullmatch(
        frame.client_id
    ):
        raise FrameError("invalid_frame", "client_id must match [A-Za-z0-9_.:-]{1,64}", frame.ref)
    if isinstance(frame, (Edit, Delete, React)) and not MESSAGE_ID_RE.fullmatch(frame.id):
        raise FrameError("invalid_frame", "id must be a message id", frame.ref)
    if (
        isinstance(frame, Send)
        and frame.reply_to is not None
        and not MESSAGE_ID_RE.fullmatch(frame.reply_to)
    ):
        raise FrameError("invalid_frame", "reply_to must be a message id", frame.ref)
    if isinstance(frame, Join) and frame.since is not None and not 0 <= frame.since <= MAX_SEQ:
        raise FrameError("invalid_frame", "since must be between 0 and 2**53-1", frame.ref)
    if isinstance(frame, Read) and not 0 <= frame.seq <= MAX_SEQ:
        raise FrameError("invalid_frame", "seq must be between 0 and 2**53-1", frame.ref)


def require_status(state: str, text: str, ref: Ref = None) -> None:
    """FrameError `invalid_status` unless `state` and `text` make a status."""
    if state not in STATUS_STATES or len(text) > STATUS_TEXT_MAX:
        raise FrameError(
            "invalid_status",
            f"state must be online, away or busy; text at most {STATUS_TEXT_MAX} characters",
            ref,
        )


def parse_count(text: str, name: str, low: int, high: int) -> int:
    """A whole number a client wrote as text (query strings): the one strict parser.

    ASCII digits only (`str.isdigit` also accepts "²" and U+0661, which `int` refuses or
    reads), no sign, no spaces, at most as many digits as `high` has (so a 5,000-digit
    string is refused before `int` spends time on it), and within [low, high].
    """
    if (
        not 0 < len(text) <= len(str(high))
        or not text.isascii()
        or not text.isdigit()
        or not low <= int(text) <= high
    ):
        raise ValidationError(f"{name} must be an integer from {low} to {high}")
    return int(text)


def valid_room(name: str) -> bool:
    return ROOM_RE.fullmatch(name) is not None


def require_text(text: str, max_chars: int, *, may_be_empty: bool = False) -> None:
    """Raise ValidationError (`empty_text`, `text_too_long`) unless `text` may be sent;
    `may_be_empty` for a message that carries attachments."""
    code = check_text(text, max_chars)
    if code == "empty_text" and may_be_empty:
        code = None
    if code is not None:
        raise ValidationError(f"text: {code.replace('_', ' ')}", code=code)


def check_text(text: str, max_chars: int) -> str | None:
    """The error code for message text, or None when it is acceptable.

    Text that shows nothing (spaces, zero-width and other invisible characters only) is
    `empty_text`; only the first `max_chars + 1` characters are looked at, which bounds
    the work for any text that is too long anyway. A NUL character is `nul_in_text`:
    PostgreSQL's text type cannot hold it, and one such message would fail the whole
    group commit it rides in, every other sender's messages with it.
    """
    if not visible(text[: max_chars + 1]):
        return "empty_text"
    if len(text) > max_chars:
        return "text_too_long"
    if "\x00" in text:
        return "nul_in_text"
    return None


# ---- server events -------------------------------------------------------------------------


def encode(event: dict[str, Any]) -> str:
    """Encode one server event to the JSON text shared by every recipient."""
    return _encoder.encode(event).decode()


def message_event(
    room: str,
    msg_id: str,
    seq: int,
    user: str,
    text: str,
    ts: int,
    client_id: str,
    reply_to: str | None = None,
    mentions: list[str] | None = None,
    attachments: Sequence[Any] = (),
) -> dict[str, Any]:
    """The `message` event; `attachments` (store.Attachment structs) only when it has any."""
    event = {
        "type": "message",
        "room": room,
        "id": msg_id,
        "seq": seq,
        "user": user,
        "text": text,
        "ts": ts,
        "client_id": client_id,
        "reply_to": reply_to,
        "mentions": mentions or [],
    }
    if attachments:
        event["attachments"] = list(attachments)
    return event


def error_event(code: str, message: str, ref: Ref = None, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        event["ref"] = ref
    event.update(extra)
    return event


def with_ref(event: dict[str, Any], ref: Ref) -> dict[str, Any]:
    if ref is not None:
        event["ref"] = ref
    return event


PING: Final = encode({"type": "ping"})


class Chunk(str):
    """Several already-encoded events joined by commas: goes into a frame's array as is."""

    __slots__ = ()


def batch(items: list[str]) -> str:
    """One outgoing frame's text: a single event as is, else a JSON array of them all
    (a Chunk's events go into the array as they are)."""
    first = items[0]
    if len(items) == 1 and type(first) is str:
        return first
    return "[" + ",".join(items) + "]"
