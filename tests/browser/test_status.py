"""The status menu (online / away / busy and a text), going away by itself when idle or hidden
and back on activity, and others' dots and status text in the people list.

The frames the page sends are read at the socket; the `presence` frames others receive are
injected there too, until the server side of statuses is merged (docs/PROTOCOL.md `status`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from .test_mentions import set_hidden
from .ui import relay, sign_up

pytestmark = pytest.mark.browser

IDLE_MS = 1_500


def sent_statuses(page: Page) -> list[dict[str, Any]]:
    """Every `status` frame the page sends, in order (the frames still go to the server)."""
    frames: list[dict[str, Any]] = []

    def route(ws: WebSocketRoute) -> None:
        upstream = ws.connect_to_server()

        def outgoing(frame: str | bytes) -> None:
            data = json.loads(frame)
            if isinstance(data, dict) and data.get("type") == "status":
                frames.append(data)
            upstream.send(frame)

        ws.on_message(outgoing)
        upstream.on_message(ws.send)

    page.route_web_socket("**/ws", route)
    return frames


def test_status_menu_idle_and_hidden(new_page: Any) -> None:
    page: Page = new_page(goto=False)
    page.add_init_script(f"window.NOCHAT_IDLE_MS = {IDLE_MS};")
    frames = sent_statuses(page)
    page.goto("/")
    sign_up(page, "alice")
    mine = page.locator("#my-status")

    page.get_by_role("button", name="Online").click()
    dialog = page.get_by_role("dialog", name="Your status")
    dialog.get_by_label("Busy").check()
    dialog.get_by_label("Status text").fill("in a meeting")
    dialog.get_by_role("button", name="Save").click()
    expect(mine).to_have_attribute("data-state", "busy")
    expect(mine).to_have_text("in a meeting")
    assert frames[-1] == {"type": "status", "state": "busy", "text": "in a meeting"}

    mine.click()
    dialog.get_by_label("Online").check()
    dialog.get_by_label("Status text").fill("")
    dialog.get_by_role("button", name="Save").click()
    assert frames[-1] == {"type": "status", "state": "online"}
    # Idle for the (shortened) idle time: away by itself; a key press brings it back.
    expect(mine).to_have_attribute("data-state", "away", timeout=IDLE_MS * 4)
    expect(mine).to_have_attribute("title", "Status: away (idle)")
    assert frames[-1] == {"type": "status", "state": "away"}
    page.keyboard.press("Shift")
    expect(mine).to_have_attribute("data-state", "online")
    assert frames[-1] == {"type": "status", "state": "online"}

    # Hidden: away at once; visible again: online.
    set_hidden(page, True)
    expect(mine).to_have_attribute("data-state", "away")
    set_hidden(page, False)
    expect(mine).to_have_attribute("data-state", "online")
    assert [f["state"] for f in frames] == ["busy", "online", "away", "online", "away", "online"]


def test_others_see_dots_and_status_text(new_page: Any) -> None:
    alice: Page = new_page()
    bob: Page = new_page(goto=False)
    routes = relay(bob)
    bob.goto("/")
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    person = bob.locator("#member-list li[data-user=alice]")
    expect(person).to_have_attribute("data-state", "online")

    def presence(state: str, text: str = "") -> None:
        frame = {"type": "presence", "room": "general", "user": "alice", "state": state}
        routes["page"].send(json.dumps({**frame, "text": text, "last_seen": 1764000000000}))

    presence("busy", "in a meeting")
    expect(person).to_have_attribute("data-state", "busy")
    expect(person.locator(".person-status")).to_have_text("in a meeting")
    presence("away")
    expect(person).to_have_attribute("data-state", "away")
    expect(person.locator(".person-status")).to_have_count(0)
    expect(person).to_contain_text("(away)")
    presence("offline")
    expect(person).to_have_attribute("data-state", "offline")
