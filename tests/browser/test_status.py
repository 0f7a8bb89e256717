"""The status menu (online / away / busy and a text), going away by itself when idle or hidden
and back on activity, and others' dots and status text in the people list.

The frames the page sends are read at the socket on their way to the real server.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from .conftest import NochatServer
from .test_mentions import set_hidden
from .ui import expect_in_chat, sign_up

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

    # A reload is no reason to go away (the page turns hidden as it unloads)...
    page.reload()
    expect_in_chat(page)
    expect(mine).to_have_attribute("data-state", "online")
    assert [f["state"] for f in frames][6:] == []
    # ...and an automatic away that outlived its page ends when a new one opens.
    set_hidden(page, True)
    expect(mine).to_have_attribute("data-state", "away")
    page.reload()
    expect_in_chat(page)
    expect(mine).to_have_attribute("data-state", "online")
    expect(mine).to_have_text("Online")
    assert [f["state"] for f in frames][6:] == ["away", "online"]


def set_status(page: Page, state: str, text: str = "") -> None:
    page.locator("#my-status").click()
    dialog = page.get_by_role("dialog", name="Your status")
    dialog.get_by_label(state).check()
    dialog.get_by_label("Status text").fill(text)
    dialog.get_by_role("button", name="Save").click()


def test_others_see_dots_and_status_text(new_page: Any, server: NochatServer) -> None:
    alice: Page = new_page(goto=False)
    alice.add_init_script(f"window.NOCHAT_IDLE_MS = {IDLE_MS * 4};")
    alice.goto("/")
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    person = bob.locator("#member-list li[data-user=alice]")
    expect(person).to_have_attribute("data-state", "online")

    set_status(alice, "Busy", "in a meeting")
    expect(person).to_have_attribute("data-state", "busy")
    expect(person.locator(".person-status")).to_have_text("in a meeting")
    # A DM shows the other person's state too.
    bob.get_by_role("button", name="New direct conversation").click()
    bob.get_by_label("Person", exact=True).fill("alice")
    bob.get_by_role("button", name="Open", exact=True).click()
    dm_dot = bob.locator("#dm-list .presence-dot")
    expect(dm_dot).to_have_attribute("data-state", "busy")
    expect(dm_dot).to_have_attribute("title", "busy: in a meeting")

    # Online again, then idle: others see her go away by herself, and come back.
    set_status(alice, "Online")
    expect(dm_dot).to_have_attribute("data-state", "online")
    expect(dm_dot).to_have_attribute("data-state", "away", timeout=IDLE_MS * 10)
    alice.keyboard.press("Shift")
    expect(dm_dot).to_have_attribute("data-state", "online")

    # The server keeps a status across a reload: her menu shows it, and so does a newcomer.
    set_status(alice, "Busy", "deep work")
    alice.reload()
    expect(alice.locator("#my-status")).to_have_attribute("data-state", "busy")
    expect(alice.locator("#my-status")).to_have_text("deep work")
    carol: Page = new_page()
    sign_up(carol, "carol")
    newcomer_view = carol.locator("#member-list li[data-user=alice]")
    expect(newcomer_view).to_have_attribute("data-state", "busy")
    expect(newcomer_view.locator(".person-status")).to_have_text("deep work")
    _, body = server.request("GET", "/api/users/alice", token=server.login("carol"))
    assert (body["state"], body["text"]) == ("busy", "deep work")
    alice.close()
    expect(person).to_have_attribute("data-state", "offline")
