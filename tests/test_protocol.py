"""The wire protocol decoder: valid frames decode; everything else is a ProtocolError."""

from __future__ import annotations

import json

import pytest

from nochat import protocol
from nochat.protocol import FrameError, Join, Pong, Send, decode_frame


def test_protocol_decodes_each_client_type() -> None:
    assert decode_frame('{"type":"join","room":"general","since":4,"ref":1}') == Join(
        ref=1, room="general", since=4
    )
    send = decode_frame('{"type":"send","room":"a-b_c","text":"hi","client_id":"x:1"}')
    assert isinstance(send, Send) and send.text == "hi"
    assert decode_frame('{"type":"pong","extra":"ignored"}') == Pong()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("", "bad_json"),
        ("nul\x00l", "bad_json"),
        ("[" * 10_000, "bad_json"),
        ('{"type":"join","room":"general"' + "}" * 3, "bad_json"),
        ("null", "invalid_frame"),
        ('{"type":null}', "unknown_type"),
        ('{"type":"Join","room":"general"}', "unknown_type"),
        ('{"type":"join","room":"a/b"}', "invalid_room"),
        ('{"type":"join","room":"' + "a" * 65 + '"}', "invalid_room"),
        ('{"type":"send","room":"general","text":"x","client_id":""}', "invalid_frame"),
        ('{"type":"read","room":"general","seq":-3}', "invalid_frame"),
        ('{"type":"pong","ref":"' + "r" * 129 + '"}', "invalid_frame"),
        ('{"type":"pong","ref":true}', "invalid_frame"),
    ],
)
def test_protocol_rejects_with_stable_code(data: str, code: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode_frame(data)
    assert caught.value.code == code


def test_protocol_error_keeps_ref_when_readable() -> None:
    with pytest.raises(FrameError) as caught:
        decode_frame('{"type":"send","room":"general","text":1,"client_id":"c","ref":"r9"}')
    assert caught.value.ref == "r9"


def test_protocol_check_text() -> None:
    assert protocol.check_text("hello", 10) is None
    assert protocol.check_text(" \n\t", 10) == "empty_text"
    assert protocol.check_text("x" * 11, 10) == "text_too_long"


@pytest.mark.parametrize(
    "text",
    [
        "\u200b\u200c\u200d",  # zero-width space and (non-)joiners
        "\u200e\u200f\u2060\u2061\ufeff",  # direction marks, word joiner, BOM
        "\u3164",  # Hangul filler
        "\u115f\u1160\uffa0",  # Hangul choseong/jungseong/halfwidth fillers
        "\u2800\u2800",  # braille blank
        "\u0301\u0308",  # combining marks with nothing to sit on
        "\x01\x1b\x7f",  # controls
        "\u00a0\u2003\u3000\u2028",  # no-break, em, ideographic space, line separator
        "\U000e0041\U000e007f",  # tag characters
    ],
)
def test_protocol_check_text_refuses_invisible_only_text(text: str) -> None:
    assert protocol.check_text(text, 4000) == "empty_text"
    assert protocol.check_text(text + "hi", 4000) is None


@pytest.mark.parametrize("text", ["e\u0301", "\U0001f600", "\u4e2d", "\u200bx", "."])
def test_protocol_check_text_keeps_text_that_shows(text: str) -> None:
    assert protocol.check_text(text, 4000) is None


def test_protocol_check_text_refuses_nul_which_postgresql_cannot_store() -> None:
    assert protocol.check_text("a\x00b", 4000) == "nul_in_text"
    assert protocol.check_text("a\x01b", 4000) is None


def test_protocol_batch_is_one_event_or_an_array() -> None:
    one = protocol.encode({"type": "ping"})
    assert protocol.batch([one]) == one
    assert json.loads(protocol.batch([one, one])) == [{"type": "ping"}] * 2


def test_protocol_encode_keeps_user_text_verbatim() -> None:
    text = '<script>alert("x")</script> \u202e \x01'
    event = protocol.message_event("general", "id", 1, "ann", text, 0, "c")
    assert json.loads(protocol.encode(event))["text"] == text
