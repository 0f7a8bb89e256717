"""The room list updates from pushed `room` events, without waiting for its poll."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import NochatServer
from .ui import message, room_button, send, sign_up

pytestmark = pytest.mark.browser

#: Well inside the 10 s room-list poll: only the pushed event can show the room this soon.
PUSH_TIMEOUT_MS = 2_500


def test_room_events_add_rooms_to_the_list(new_page: Any, server: NochatServer) -> None:
    alice: Page = new_page()
    sign_up(alice, "alice")
    bob = server.register("bob")
    # A public room someone creates appears at once.
    status, _ = server.request("POST", "/api/rooms", {"name": "lobby"}, bob)
    assert status == 201
    expect(room_button(alice, "lobby")).to_be_visible(timeout=PUSH_TIMEOUT_MS)

    # A private room I am added to appears at once, and is live.
    status, _ = server.request("POST", "/api/rooms", {"name": "design", "private": True}, bob)
    assert status == 201
    server.post(bob, "design", "welcome to design")
    status, _ = server.request("POST", "/api/rooms/design/members", {"user": "alice"}, bob)
    assert status in (200, 201)
    expect(room_button(alice, "design")).to_be_visible(timeout=PUSH_TIMEOUT_MS)
    room_button(alice, "design").click()
    expect(message(alice, "welcome to design")).to_be_visible()
    send(alice, "glad to join")
    expect(message(alice, "glad to join")).to_have_attribute("data-state", "delivered")
    server.post(bob, "design", "live from bob")
    expect(message(alice, "live from bob")).to_be_visible()

    # So does a DM someone opens with me.
    status, _ = server.request("POST", "/api/dms", {"user": "alice"}, bob)
    assert status in (200, 201)
    expect(room_button(alice, "bob")).to_be_visible(timeout=PUSH_TIMEOUT_MS)
