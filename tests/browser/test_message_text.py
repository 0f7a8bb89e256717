"""Message text as the reader sees it: links, inline code, code blocks, line breaks, no HTML."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import NochatServer
from .ui import messages, send, sign_up

pytestmark = pytest.mark.browser

TEXT = (
    "see https://example.com/a?b=1&c=2. and `print(1)` <b>bold</b> <img src=x onerror=alert(1)>\n"
    "second line javascript:alert(1)\n"
    "```py\n"
    "def f():\n"
    "    return '<i>'\n"
    "```\n"
    "after the block, a lone ` backtick"
)


def test_links_code_and_line_breaks_never_html(new_page: Any, server: NochatServer) -> None:
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    send(alice, TEXT)

    for page in (alice, bob):
        text = messages(page).last.locator(".text")
        expect(text).to_contain_text("after the block")
        link = text.locator("a")
        expect(link).to_have_count(1)  # javascript: is no link
        expect(link).to_have_text("https://example.com/a?b=1&c=2")
        expect(link).to_have_attribute("href", "https://example.com/a?b=1&c=2")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(link).to_have_attribute("target", "_blank")
        expect(text.locator(":scope > code")).to_have_text("print(1)")
        expect(text.locator("pre > code")).to_have_text("def f():\n    return '<i>'")
        # Markup in the text is text: no element came from it.
        expect(text.locator("b, img, i")).to_have_count(0)
        assert text.evaluate("n => [...n.querySelectorAll('*')].map(e => e.tagName)") == [
            "A",
            "CODE",
            "PRE",
            "CODE",
        ]
        assert text.evaluate("n => n.textContent") == (
            "see https://example.com/a?b=1&c=2. and print(1) <b>bold</b>"
            " <img src=x onerror=alert(1)>\nsecond line javascript:alert(1)"
            "def f():\n    return '<i>'after the block, a lone ` backtick"
        )
        # The line break is kept (pre-wrap): the first paragraph spans two lines.
        assert text.evaluate("n => getComputedStyle(n).whiteSpace") == "pre-wrap"
    # A long code line scrolls inside its block instead of widening the page.
    send(bob, "```\n" + "x" * 400 + "\n```")
    expect(messages(alice).last.locator("pre")).to_be_visible()
    assert alice.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    # What was stored is the text as typed.
    token = server.login("bob")
    assert server.history(token, "general")[0]["text"] == TEXT
