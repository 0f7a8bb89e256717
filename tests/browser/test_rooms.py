"""Private rooms, adding members, and direct conversations."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import NochatServer
from .ui import expect_in_chat, log_in, message, room_button, send, sign_up

pytestmark = pytest.mark.browser

#: New rooms made by someone else show up when the room list is next polled (every 10 s).
ROOM_POLL_TIMEOUT_MS = 25_000


def test_private_room_and_members(new_page: Any) -> None:
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")

    alice.get_by_role("button", name="Create room").click()
    alice.get_by_label("Room name").fill("secret-plans")
    alice.get_by_label("Private (invite only)").check()
    alice.get_by_role("button", name="Create", exact=True).click()
    expect_in_chat(alice, "# secret-plans")
    expect(alice.locator("#room-kind")).to_have_text("Private room")
    send(alice, "only for invited people")
    expect(message(alice, "only for invited people")).to_have_attribute("data-state", "delivered")

    # Bob cannot see it until he is added.
    bob.reload()
    expect_in_chat(bob)
    expect(room_button(bob, "secret-plans")).to_have_count(0)

    alice.get_by_role("button", name="Add member").click()
    alice.get_by_label("Person to add").fill("bob")
    alice.get_by_role("button", name="Add", exact=True).click()
    expect(alice.locator("#member-list li", has_text="bob")).to_be_visible()

    expect(room_button(bob, "secret-plans")).to_be_visible(timeout=ROOM_POLL_TIMEOUT_MS)
    room_button(bob, "secret-plans").click()
    expect(bob.get_by_role("heading", name="# secret-plans")).to_be_visible()
    expect(message(bob, "only for invited people")).to_be_visible()
    send(bob, "thanks for the invite")
    expect(message(alice, "thanks for the invite")).to_be_visible()


def test_private_room_rejects_strangers_in_add_dialog(new_page: Any) -> None:
    alice: Page = new_page()
    sign_up(alice, "alice")
    alice.get_by_role("button", name="Create room").click()
    alice.get_by_label("Room name").fill("inner-circle")
    alice.get_by_label("Private (invite only)").check()
    alice.get_by_role("button", name="Create", exact=True).click()
    expect_in_chat(alice, "# inner-circle")
    alice.get_by_role("button", name="Add member").click()
    alice.get_by_label("Person to add").fill("nobody-here")
    alice.get_by_role("button", name="Add", exact=True).click()
    expect(alice.locator("#member-dialog .form-error")).not_to_be_empty()
    expect(alice.locator("#member-dialog")).to_be_visible()


def test_direct_conversation(new_page: Any, server: NochatServer) -> None:
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")

    alice.get_by_role("button", name="New direct conversation").click()
    alice.get_by_label("Person", exact=True).fill("bob")
    alice.get_by_role("button", name="Open", exact=True).click()
    expect_in_chat(alice, "bob")
    expect(alice.locator("#room-kind")).to_have_text("Direct conversation")
    send(alice, "psst, just between us")
    expect(message(alice, "psst, just between us")).to_have_attribute("data-state", "delivered")

    # Bob learns of the conversation on his next room-list poll, with an unread badge.
    dm = bob.locator("#dm-list button.room-link", has_text="alice")
    expect(dm).to_be_visible(timeout=ROOM_POLL_TIMEOUT_MS)
    expect(dm.locator(".unread")).to_have_text("1 unread")
    dm.click()
    expect(bob.get_by_role("heading", name="alice", exact=True)).to_be_visible()
    expect(message(bob, "psst, just between us")).to_be_visible()
    send(bob, "ok, only here")
    expect(message(alice, "ok, only here")).to_be_visible()

    # Opening it again finds the same conversation.
    bob.get_by_role("button", name="New direct conversation").click()
    bob.get_by_label("Person", exact=True).fill("alice")
    bob.get_by_role("button", name="Open", exact=True).click()
    expect(bob.locator("#dm-list button.room-link")).to_have_count(1)

    # Nobody else can read it.
    token = server.register("eve")
    name = bob.evaluate("decodeURIComponent(location.hash.slice(1))")
    status, body = server.request("GET", f"/api/rooms/{name}/messages", token=token)
    assert status in (403, 404), body


def test_room_list_keeps_joined_rooms_and_loads_more_public_ones(
    new_page: Any, server: NochatServer
) -> None:
    """Past the first page of public rooms, every room I am in is still listed, and the
    rest of the public rooms come on demand."""
    seeder = server.register("seeder")
    for i in range(105):  # more than one page (100) of public rooms
        status, body = server.request("POST", "/api/rooms", {"name": f"r{i:03d}"}, seeder)
        assert status == 201, body
    reader = server.register("reader")
    status, body = server.request("POST", "/api/rooms", {"name": "zz-mine"}, reader)
    assert status == 201, body
    page: Page = new_page()
    log_in(page, "reader")
    expect(room_button(page, "zz-mine")).to_be_visible()  # past every public page
    expect(room_button(page, "r098")).to_be_visible()
    expect(room_button(page, "r104")).to_have_count(0)
    more = page.get_by_role("button", name="More public rooms")
    more.click()
    expect(room_button(page, "r104")).to_be_visible()
    expect(more).to_be_hidden()
    expect(page.locator("#room-list button.room-link")).to_have_count(107)
