"""Two people edit, delete and react to messages from the hover actions, live and after reload."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from .conftest import NochatServer
from .ui import composer, message, messages, send, sign_up

pytestmark = pytest.mark.browser


def action(msg: Locator, name: str) -> Locator:
    msg.hover()
    return msg.get_by_role("toolbar", name="Message actions").get_by_role("button", name=name)


def chip(msg: Locator, emoji: str) -> Locator:
    return msg.locator(f".reactions .chip[data-emoji='{emoji}']")


def test_edit_with_up_arrow_and_escape(new_page: Any, server: NochatServer) -> None:
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    send(alice, "first thing")
    send(alice, "lets meet at noun")
    expect(message(alice, "lets meet at noun")).to_have_attribute("data-state", "delivered")
    send(bob, "sure")
    expect(message(alice, "sure")).to_be_visible()

    # Up in the empty composer edits my newest message; Escape leaves it as it was.
    box = composer(alice)
    box.press("ArrowUp")
    expect(box).to_have_value("lets meet at noun")
    expect(alice.locator("#composer-context")).to_contain_text("Editing")
    box.press("Escape")
    expect(box).to_have_value("")
    expect(alice.locator("#composer-context")).to_be_hidden()
    box.press("ArrowUp")
    box.fill("lets meet at noon")
    box.press("Enter")
    for page in (alice, bob):
        edited = message(page, "lets meet at noon")
        expect(edited.locator(".edited")).to_have_text("(edited)")
        expect(message(page, "lets meet at noun")).to_have_count(0)
    # Only my own messages offer Edit and Delete.
    expect(action(message(bob, "lets meet at noon"), "Reply")).to_be_visible()
    expect(action(message(bob, "lets meet at noon"), "Edit")).to_have_count(0)
    expect(action(message(bob, "lets meet at noon"), "Delete")).to_have_count(0)
    # Edited from the menu too, and the state survives a reload (history's current state).
    action(message(alice, "first thing"), "Edit").click()
    expect(box).to_have_value("first thing")
    box.fill("first thing, edited")
    box.press("Enter")
    expect(message(bob, "first thing, edited").locator(".edited")).to_be_visible()
    bob.reload()
    expect(message(bob, "lets meet at noon").locator(".edited")).to_be_visible()
    expect(message(bob, "first thing, edited")).to_be_visible()
    assert [m["text"] for m in server.history(server.login("bob"), "general")] == [
        "first thing, edited",
        "lets meet at noon",
        "sure",
    ]


def test_reactions_toggle_and_show_who(new_page: Any, server: NochatServer) -> None:
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    send(alice, "ship it?")
    expect(message(bob, "ship it?")).to_be_visible()

    # Bob reacts from the picker: the common six are offered first.
    action(message(bob, "ship it?"), "React").click()
    picker = bob.get_by_role("dialog", name="Add a reaction")
    expect(picker.locator(".common .pick")).to_have_count(6)
    picker.get_by_role("button", name="👍").click()
    expect(picker).to_have_count(0)
    for page in (alice, bob):
        expect(chip(message(page, "ship it?"), "👍").locator(".count")).to_have_text("1")
    expect(chip(message(alice, "ship it?"), "👍")).to_have_attribute("title", "bob")
    expect(chip(message(alice, "ship it?"), "👍")).to_have_attribute("aria-pressed", "false")
    expect(chip(message(bob, "ship it?"), "👍")).to_have_attribute("aria-pressed", "true")

    # Alice clicks the chip: hers is added; clicking again takes it away.
    chip(message(alice, "ship it?"), "👍").click()
    expect(chip(message(bob, "ship it?"), "👍").locator(".count")).to_have_text("2")
    expect(chip(message(bob, "ship it?"), "👍")).to_have_attribute("title", "bob, alice")
    expect(chip(message(alice, "ship it?"), "👍")).to_have_attribute("aria-pressed", "true")
    chip(message(alice, "ship it?"), "👍").click()
    expect(chip(message(bob, "ship it?"), "👍").locator(".count")).to_have_text("1")
    # A second emoji from the picker's wider set; bob takes his 👍 back.
    action(message(alice, "ship it?"), "React").click()
    alice.get_by_role("dialog", name="Add a reaction").get_by_role("button", name="🚀").click()
    chip(message(bob, "ship it?"), "👍").click()
    for page in (alice, bob):
        expect(chip(message(page, "ship it?"), "🚀")).to_have_attribute("title", "alice")
        expect(chip(message(page, "ship it?"), "👍")).to_have_count(0)
    alice.reload()
    expect(chip(message(alice, "ship it?"), "🚀").locator(".count")).to_have_text("1")
    (stored,) = server.history(server.login("bob"), "general")
    assert stored["reactions"] == {"🚀": ["alice"]}


def test_delete_own_after_confirmation(new_page: Any, server: NochatServer) -> None:
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    send(alice, "my password is hunter2")
    send(alice, "oops")
    expect(message(bob, "oops")).to_be_visible()
    secret = message(alice, "my password is hunter2")

    # Cancelling the confirmation keeps it.
    alice.once("dialog", lambda d: d.dismiss())
    action(secret, "Delete").click()
    expect(message(bob, "my password is hunter2")).to_be_visible()
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    alice.once("dialog", accept)
    action(secret, "Delete").click()
    for page in (alice, bob):
        expect(page.locator("li.msg.deleted .tombstone")).to_have_text("This message was deleted.")
        expect(message(page, "my password is hunter2")).to_have_count(0)
        expect(messages(page)).to_have_count(2)
        # A tombstone offers no actions.
        expect(page.locator("li.msg.deleted .actions")).to_have_count(0)
    assert asked and "Delete" in asked[0]
    bob.reload()
    expect(bob.locator("li.msg.deleted .tombstone")).to_be_visible()
    stored = server.history(server.login("bob"), "general")
    assert stored[0]["deleted"] is True and not stored[0].get("text")
