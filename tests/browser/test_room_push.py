"""The room list updates from pushed `room` events, without waiting for its poll."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import NochatServer
from .ui import message, relay, room_button, send, sign_up

pytestmark = pytest.mark.browser

#: Well inside the 10 s room-list poll: only the pushed event can show the room this soon.
PUSH_TIMEOUT_MS = 2_500


def test_room_event_adds_the_room_to_the_list(new_page: Any, server: NochatServer) -> None:
    alice: Page = new_page(goto=False)
    routes = relay(alice)
    alice.goto("/")
    sign_up(alice, "alice")
    bob = server.register("bob")
    status, _ = server.request("POST", "/api/rooms", {"name": "design", "private": True}, bob)
    assert status == 201
    status, _ = server.request("POST", "/api/rooms/design/members", {"user": "alice"}, bob)
    assert status in (200, 201)
    server.post(bob, "design", "welcome to design")
    _, listing = server.request("GET", "/api/rooms", token=server.login("alice"))
    (design,) = [r for r in listing["rooms"] if r["name"] == "design"]

    # The frame the server pushes when alice is added (docs/PROTOCOL.md `room`).
    routes["page"].send(json.dumps({"type": "room", "room": design}))
    expect(room_button(alice, "design")).to_be_visible(timeout=PUSH_TIMEOUT_MS)
    expect(room_button(alice, "design").locator(".unread")).to_contain_text("1")
    room_button(alice, "design").click()
    expect(message(alice, "welcome to design")).to_be_visible()
    send(alice, "glad to join")
    expect(message(alice, "glad to join")).to_have_attribute("data-state", "delivered")
    # The room was joined live: a message from bob arrives without a reload.
    server.post(bob, "design", "live from bob")
    expect(message(alice, "live from bob")).to_be_visible()
