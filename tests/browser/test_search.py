"""The search box: results over all my rooms (never rooms I cannot see); a result opens its room
at the message, loading older history when needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import NochatServer
from .ui import expect_in_chat, log_in, message, room_button, sign_up

pytestmark = pytest.mark.browser


def search(page: Page, q: str) -> None:
    box = page.get_by_role("searchbox", name="Search messages")
    box.fill(q)
    box.press("Enter")


def test_search_finds_my_rooms_only_and_opens_the_message(
    new_page: Any, server: NochatServer, screenshots: Path
) -> None:
    alice = server.register("alice")
    bob = server.register("bob")
    server.post(bob, "general", "the otters are holding hands")
    for i in range(60):
        server.post(bob, "general", f"filler {i}")
    status, _ = server.request("POST", "/api/rooms", {"name": "ops", "private": True}, alice)
    assert status == 201
    server.post(alice, "ops", "<b>otters</b> escaped from the ops room")
    server.post(alice, "general", "nothing to see")

    # Carol is not in ops: she finds the public message only.
    carol: Page = new_page()
    sign_up(carol, "carol")
    search(carol, "otters")
    results = carol.locator("#search-list .result")
    expect(carol.locator("#search-summary")).to_have_text("Results for “otters”")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("bob in #general")
    search(carol, "escaped")
    expect(carol.locator("#search-summary")).to_have_text("Nothing found for “escaped”")
    expect(results).to_have_count(0)

    page: Page = new_page()
    log_in(page, "alice")
    search(page, "OTTERS")
    results = page.locator("#search-list .result")
    expect(results).to_have_count(2)
    # Newest first, the match marked, the text's markup shown as text.
    expect(results.nth(0)).to_contain_text("alice in #ops")
    expect(results.nth(0).locator(".result-text")).to_have_text(
        "<b>otters</b> escaped from the ops room"
    )
    expect(results.nth(0).locator("mark")).to_have_text("otters")
    expect(results.nth(0).locator("b")).to_have_count(0)
    expect(results.nth(1).locator("mark")).to_have_text("otters")
    page.screenshot(path=str(screenshots / "search.png"))

    # The older result is not loaded in #general yet: opening it fetches older pages.
    results.nth(1).click()
    expect(page.locator("#search-results")).to_be_hidden()
    expect_in_chat(page, "# general")
    found = message(page, "the otters are holding hands")
    expect(found).to_be_in_viewport()
    # And one in another room switches to it.
    search(page, "escaped")
    page.locator("#search-list .result").first.click()
    expect_in_chat(page, "# ops")
    expect(message(page, "<b>otters</b> escaped from the ops room")).to_be_visible()
    expect(room_button(page, "ops")).to_have_attribute("aria-current", "page")
    # Escape in the box closes the results.
    search(page, "otters")
    expect(page.locator("#search-results")).to_be_visible()
    page.get_by_role("searchbox", name="Search messages").press("Escape")
    expect(page.locator("#search-results")).to_be_hidden()
