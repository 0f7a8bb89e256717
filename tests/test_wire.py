"""Prepared server frames parse as the same text messages wsproto would have sent."""

from __future__ import annotations

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from nochat.wire import text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_wire_text_frame_parses_as_one_text_message(size: int) -> None:
    payload = ("é" + "x" * size)[:size] if size else ""
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(text_frame(payload))
    (event,) = list(client.events())
    assert isinstance(event, TextMessage)
    assert event.data == payload and event.message_finished
