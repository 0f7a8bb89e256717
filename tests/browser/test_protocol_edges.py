"""Frames a real server sends rarely, injected between it and the page: batches, replays, reset.

Also: the whole sign-in-and-send path with the keyboard alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from .conftest import NochatServer
from .ui import (
    PASSWORD,
    RECONNECT_TIMEOUT_MS,
    composer,
    expect_in_chat,
    message,
    relay,
    send,
    seqs,
    sign_up,
    status,
)

pytestmark = pytest.mark.browser


def test_batched_replayed_and_reset_frames(new_page: Any, server: NochatServer) -> None:
    page: Page = new_page(goto=False)
    routes = relay(page)
    page.goto("/")
    sign_up(page, "gina")
    for text in ("one", "two", "three"):
        send(page, text)
    expect(message(page, "three")).to_have_attribute("data-state", "delivered")
    token = server.login("gina")
    _, page_body = server.request("GET", "/api/rooms/general/messages", token=token)
    stored = page_body["messages"]

    # A batch (JSON array) holding a replay of messages already shown and a typing event.
    batch = [{"type": "message", **m} for m in stored[:2]]
    batch.append({"type": "typing", "room": "general", "user": "ghost"})
    routes["page"].send(json.dumps(batch))
    expect(page.locator("#typing")).to_have_text("ghost is typing…")
    assert seqs(page) == [1, 2, 3]

    # `reset`: the client drops the room, reloads it over REST and joins again.
    page.evaluate(
        "document.querySelector('#messages').append(Object.assign("
        "document.createElement('li'), {className: 'msg stale', textContent: 'stale'}))"
    )
    reset = {
        "type": "reset",
        "room": "general",
        "epoch": page_body["epoch"],
        "head_seq": page_body["head_seq"],
    }
    routes["page"].send(json.dumps(reset))
    expect(page.locator("#messages li.stale")).to_have_count(0)
    expect(message(page, "three")).to_be_visible()
    assert seqs(page) == [1, 2, 3]
    send(page, "four")
    expect(message(page, "four")).to_have_attribute("data-state", "delivered")
    assert seqs(page) == [1, 2, 3, 4]


def test_keyboard_only(new_page: Any, server: NochatServer) -> None:
    server.register("kim")
    page: Page = new_page()
    expect(page.get_by_label("Username", exact=True)).to_be_focused()
    page.keyboard.type("kim")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")  # the form's first button: Log in
    expect_in_chat(page)
    expect(composer(page)).to_be_focused()
    page.keyboard.type("typed without a mouse")
    page.keyboard.press("Enter")
    expect(message(page, "typed without a mouse")).to_have_attribute("data-state", "delivered")

    # Make a room from the keyboard: Shift+Tab back to the sidebar's "Create room".
    create = page.get_by_role("button", name="Create room")
    for _ in range(30):
        if create.evaluate("el => el === document.activeElement"):
            break
        page.keyboard.press("Shift+Tab")
    expect(create).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Room name")).to_be_focused()
    page.keyboard.type("by-keyboard")
    page.keyboard.press("Enter")
    expect_in_chat(page, "# by-keyboard")
    expect(composer(page)).to_be_focused()


def test_backoff_is_full_jitter_and_capped(new_page: Any) -> None:
    page: Page = new_page()
    highs, lows = page.evaluate(
        """async () => {
            const { backoffDelay } = await import("/socket.js");
            const n = [...Array(12).keys()];
            const at = (r) => n.map((i) => backoffDelay(i, () => r));
            return [at(0.999999), at(0)];
        }"""
    )
    assert lows == [0] * 12
    assert highs[:3] == [499, 999, 1999]
    assert highs == sorted(highs)
    assert max(highs) == 29_999


def _set_hidden(page: Page, hidden: bool) -> None:
    """Pretend the tab is in the background (headless pages are always visible)."""
    page.evaluate(
        "h => Object.defineProperty(document, 'hidden', {configurable: true, get: () => h})",
        hidden,
    )


def test_watchdog_reconnects_a_silent_socket(new_page: Any) -> None:
    """No frame (not even a ping) for ~2.5 ping intervals means dead; hidden tabs get longer."""
    page: Page = new_page(goto=False)
    page.clock.install()
    state = {"mute": False, "refuse": False}

    def relay(route: WebSocketRoute) -> None:
        if state["refuse"]:
            route.close(code=1011, reason="test: still down")
            return
        upstream = route.connect_to_server()
        route.on_message(upstream.send)
        upstream.on_message(lambda frame: None if state["mute"] else route.send(frame))

    page.route_web_socket("**/ws", relay)
    page.goto("/")
    sign_up(page, "ivy")
    state["mute"] = state["refuse"] = True

    # Hidden tab: 70 s of silence is tolerated (timers there are throttled anyway).
    _set_hidden(page, True)
    page.clock.fast_forward(70_000)
    expect(status(page)).to_have_attribute("data-state", "connected")

    # Visible again: the same silence is now too long.
    _set_hidden(page, False)
    page.clock.fast_forward(10_000)
    expect(status(page)).to_have_attribute("data-state", "reconnecting")

    expect(page.get_by_role("button", name="Retry now")).to_be_visible()

    state["mute"] = state["refuse"] = False  # the next backoff attempt gets through
    expect(status(page)).to_have_attribute("data-state", "connected", timeout=RECONNECT_TIMEOUT_MS)
    send(page, "alive again")
    expect(message(page, "alive again")).to_have_attribute("data-state", "delivered")
