"""Two people chatting in real Chromium against a real `nochat serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from .conftest import NochatServer
from .ui import (
    composer,
    expect_in_chat,
    log_in,
    message,
    messages,
    room_button,
    send,
    seqs,
    sign_up,
)

pytestmark = pytest.mark.browser


def test_login_page_is_labelled(new_page: Any, screenshots: Path) -> None:
    page: Page = new_page()
    expect(page.get_by_label("Username", exact=True)).to_be_visible()
    expect(page.get_by_label("Password", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign up")).to_be_visible()
    page.screenshot(path=str(screenshots / "login.png"))


def test_chat_two_users_both_ways(new_page: Any, server: NochatServer, screenshots: Path) -> None:
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")

    send(alice, "hi bob, welcome to NoChat!")
    expect(message(bob, "hi bob, welcome to NoChat!")).to_be_visible()
    expect(message(bob, "hi bob, welcome to NoChat!")).not_to_have_class("msg own")
    own = message(alice, "hi bob, welcome to NoChat!")
    expect(own).to_have_class("msg own")
    expect(own).to_have_attribute("data-state", "delivered")

    send(bob, "hey alice, glad to be here")
    expect(message(alice, "hey alice, glad to be here")).to_be_visible()
    expect(message(alice, "hey alice, glad to be here").locator(".author")).to_have_text("bob")

    # Shift+Enter makes a newline, Enter sends.
    box = composer(alice)
    box.fill("two lines:")
    box.press("Shift+Enter")
    box.press_sequentially("second line")
    expect(box).to_have_value("two lines:\nsecond line")
    box.press("Enter")
    expect(box).to_have_value("")
    expect(message(bob, "two lines:\nsecond line")).to_be_visible()

    # Presence: each sees the other online in the room.
    expect(alice.locator("#member-list li.online", has_text="bob")).to_be_visible()
    expect(bob.locator("#member-list li.online", has_text="alice")).to_be_visible()

    # Typing indicator shows, then expires on its own.
    composer(bob).press_sequentially("let me think", delay=20)
    expect(alice.locator("#typing")).to_have_text("bob is typing…")
    expect(alice.locator("#typing")).to_have_text("", timeout=15_000)
    composer(bob).fill("")

    send(alice, "The long word: " + "a" * 300)
    send(bob, "Timestamps are local, text wraps, and the socket batches frames.")
    expect(
        message(alice, "Timestamps are local, text wraps, and the socket batches frames.")
    ).to_be_visible()
    # Long text wraps inside the view instead of widening it.
    width = alice.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert width <= 0
    assert messages(alice).first.locator("time").get_attribute("datetime")

    # A few more rooms, a DM and an unread message make the screenshot look lived-in.
    alice_token = server.login("alice")
    bob_token = server.login("bob")
    server.request("POST", "/api/rooms", {"name": "design-review", "private": True}, alice_token)
    server.request("POST", "/api/rooms", {"name": "random"}, bob_token)
    server.post(bob_token, "random", "Anyone up for lunch?")
    _, dm = server.request("POST", "/api/dms", {"user": "alice"}, bob_token)
    server.post(bob_token, dm["name"], "Got a minute after standup?")
    alice.reload()
    expect_in_chat(alice)
    expect(room_button(alice, "design-review")).to_be_visible()
    expect(room_button(alice, "bob").locator(".unread")).to_have_text("1 unread")
    expect(messages(alice).last).to_be_visible()
    expect(alice.locator("#member-list li.online", has_text="bob")).to_be_visible()
    alice.screenshot(path=str(screenshots / "chat.png"))

    # Each message is shown exactly once, in seq order.
    assert seqs(alice) == [1, 2, 3, 4, 5]
    assert seqs(bob) == [1, 2, 3, 4, 5]


def test_session_survives_reload_then_logout(new_page: Any) -> None:
    page: Page = new_page()
    sign_up(page, "carol")
    send(page, "still here after a reload?")
    expect(message(page, "still here after a reload?")).to_have_attribute("data-state", "delivered")
    page.reload()
    expect_in_chat(page)
    expect(message(page, "still here after a reload?")).to_be_visible()
    assert seqs(page) == [1]

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    log_in(page, "carol")
    expect(message(page, "still here after a reload?")).to_be_visible()


def test_wrong_password_is_explained(new_page: Any, server: NochatServer) -> None:
    server.register("dave")
    page: Page = new_page()
    page.get_by_label("Username", exact=True).fill("dave")
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")


def test_history_and_scroll_back(new_page: Any, server: NochatServer) -> None:
    token = server.register("seeder")
    for i in range(1, 121):
        server.post(token, "general", f"seed message {i:03d}")
    page: Page = new_page()
    sign_up(page, "reader")
    expect(message(page, "seed message 120")).to_be_visible()
    expect(message(page, "seed message 071")).to_be_attached()
    expect(message(page, "seed message 070")).not_to_be_attached()

    scroller = page.locator("#scroller")
    scroller.evaluate("el => { el.scrollTop = 0 }")
    expect(message(page, "seed message 021")).to_be_attached()
    scroller.evaluate("el => { el.scrollTop = 0 }")
    expect(message(page, "seed message 001")).to_be_attached()
    expect(page.get_by_text("This is the very beginning of #general.")).to_be_visible()
    expect(page.get_by_role("button", name="Load older messages")).to_be_hidden()
    assert seqs(page) == list(range(1, 121))

    # A message arriving live lands at the bottom, after all the history.
    server.post(token, "general", "live after history")
    expect(message(page, "live after history")).to_be_attached()
    assert seqs(page) == list(range(1, 122))


def test_pending_until_ack_then_delivered(new_page: Any) -> None:
    page: Page = new_page(goto=False)
    held: list[str | bytes] = []
    state: dict[str, Any] = {"hold": False, "route": None}

    def relay(route: WebSocketRoute) -> None:
        upstream = route.connect_to_server()
        state["route"] = route
        route.on_message(upstream.send)

        def from_server(frame: str | bytes) -> None:
            if state["hold"]:
                held.append(frame)
            else:
                route.send(frame)

        upstream.on_message(from_server)

    page.route_web_socket("**/ws", relay)
    page.goto("/")
    sign_up(page, "erin")
    state["hold"] = True
    send(page, "is this delivered yet?")
    pending = message(page, "is this delivered yet?")
    expect(pending).to_have_attribute("data-state", "pending")
    expect(pending).to_contain_text("Sending…")
    expect(pending).to_have_class("msg own")

    state["hold"] = False
    for frame in held:
        state["route"].send(frame)
    expect(pending).to_have_attribute("data-state", "delivered")
    expect(pending.locator(".state")).to_contain_text("Delivered")
    assert seqs(page) == [1]


def test_xss_renders_as_text(new_page: Any) -> None:
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "mallory")
    sign_up(bob, "victim")
    payloads = [
        '<img src=x onerror="window.__xss = 1">',
        "<script>window.__xss = 2</script>",
        '<a href="javascript:window.__xss=3">click</a> <b>bold?</b>',
    ]
    for text in payloads:
        send(alice, text)
    for text in payloads:
        expect(message(bob, text)).to_be_visible()
    log = bob.get_by_role("log")
    for tag in ("img", "script", "a", "b"):
        assert log.locator(f".text {tag}").count() == 0
    assert bob.evaluate("window.__xss") is None
    assert alice.evaluate("window.__xss") is None


def test_unread_count_for_other_rooms(new_page: Any, server: NochatServer) -> None:
    alice: Page = new_page()
    sign_up(alice, "alice")
    token = server.register("bob")
    # Alice makes a room and moves there; a message in #general counts as unread.
    alice.get_by_role("button", name="Create room").click()
    alice.get_by_label("Room name").fill("random")
    alice.get_by_role("button", name="Create", exact=True).click()
    expect_in_chat(alice, "# random")
    server.post(token, "general", "you have mail")
    badge = room_button(alice, "general").locator(".unread")
    expect(badge).to_have_text("1 unread")
    expect(alice).to_have_title("(1) NoChat")
    room_button(alice, "general").click()
    expect(message(alice, "you have mail")).to_be_visible()
    expect(badge).to_have_count(0)
    expect(alice).to_have_title("NoChat")
