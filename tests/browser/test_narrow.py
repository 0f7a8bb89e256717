"""A phone-sized viewport: the sidebar and people become drawers, the composer stays put."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .ui import composer, message, room_button, send, sign_up

pytestmark = pytest.mark.browser


def test_narrow_viewport(new_page: Any, screenshots: Path) -> None:
    page: Page = new_page(width=390, height=844, is_mobile=True, has_touch=True)
    expect(page.get_by_role("button", name="Sign up")).to_be_visible()
    sign_up(page, "phoebe")
    other: Page = new_page()
    sign_up(other, "quinn")
    send(other, "Hello from a laptop! How does this look on your phone?")
    send(page, "Pretty good — and a long one wraps nicely: " + "word " * 40)
    send(other, "Great: " + "x" * 120)
    expect(message(page, "Great: " + "x" * 120)).to_be_visible()

    sidebar = page.locator("#sidebar")
    expect(sidebar).not_to_be_in_viewport()
    expect(composer(page)).to_be_in_viewport()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.mouse.move(195, 30)  # onto the header: no message's hover actions in the picture
    page.screenshot(path=str(screenshots / "narrow.png"))

    page.get_by_role("button", name="Show rooms").click()
    expect(sidebar).to_be_in_viewport(ratio=1)
    expect(room_button(page, "general")).to_be_focused()
    page.screenshot(path=str(screenshots / "narrow-rooms.png"))
    page.keyboard.press("Escape")
    expect(sidebar).not_to_be_in_viewport()
    expect(page.get_by_role("button", name="Show rooms")).to_be_focused()

    page.get_by_role("button", name="People").click()
    expect(page.locator("#people")).to_be_in_viewport(ratio=1)
    expect(page.locator("#member-list li.online", has_text="quinn")).to_be_visible()
