"""The composer near the length limit: a long paste is kept whole, counted, and not sent."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .ui import composer, message, messages, sign_up

pytestmark = pytest.mark.browser


def test_composer_long_paste_is_counted_and_refused_not_cut(new_page: Any) -> None:
    page: Page = new_page()
    sign_up(page, "paula")
    box = composer(page)
    counter = page.locator("#message-count")
    send_button = page.get_by_role("button", name="Send")

    box.fill("short")
    expect(counter).to_be_hidden()

    box.fill("")
    box.focus()
    page.keyboard.insert_text("x" * 5_000)  # as a paste arrives: no silent cut to 4,000
    expect(box).to_have_value("x" * 5_000)
    expect(counter).to_be_visible()
    expect(counter).to_have_text("5,000 / 4,000")
    expect(counter).to_have_class("char-count over")
    expect(send_button).to_be_disabled()
    box.press("Enter")
    expect(page.locator("#composer-error")).to_contain_text("at most 4000 characters")
    expect(box).to_have_value("x" * 5_000)  # nothing lost, nothing sent
    expect(messages(page)).to_have_count(0)

    # Trimmed to the limit, it goes: the counter shows it is right at the edge.
    box.fill("y" * 4_000)
    expect(counter).to_have_text("4,000 / 4,000")
    expect(counter).to_have_class("char-count")
    expect(send_button).to_be_enabled()
    box.press("Enter")
    expect(message(page, "y" * 4_000)).to_have_attribute("data-state", "delivered")
    expect(counter).to_be_hidden()
