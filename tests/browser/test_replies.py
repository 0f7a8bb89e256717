"""Replies: a quote above the composer and on the message; clicking it jumps to the original."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import NochatServer
from .test_message_actions import action
from .ui import composer, message, send, sign_up

pytestmark = pytest.mark.browser


def test_reply_from_the_menu_shows_the_quote_to_both(new_page: Any) -> None:
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    send(alice, "who reviews the release notes?")
    send(alice, "and who bakes the cake?")
    expect(message(bob, "and who bakes the cake?")).to_be_visible()

    # Reply, then change my mind with Escape: the next send is no reply.
    action(message(bob, "and who bakes the cake?"), "Reply").click()
    context = bob.locator("#composer-context")
    label = context.locator(".context-text")
    expect(label).to_have_text("Replying to alice: and who bakes the cake?")
    composer(bob).press("Escape")
    expect(context).to_be_hidden()

    action(message(bob, "who reviews the release notes?"), "Reply").click()
    expect(context).to_contain_text("Replying to alice: who reviews")
    send(bob, "I will")
    expect(context).to_be_hidden()
    for page in (alice, bob):
        quote = message(page, "I will").locator(".reply-quote")
        expect(quote).to_have_text("In reply to alice: who reviews the release notes?")
    send(bob, "not a reply")
    expect(message(alice, "not a reply").locator(".reply-quote")).to_have_count(0)
    # After a reload the quote comes from history (reply_to is stored).
    alice.reload()
    expect(message(alice, "I will").locator(".reply-quote")).to_contain_text("who reviews")


def test_quote_click_loads_older_history_to_the_original(
    new_page: Any, server: NochatServer
) -> None:
    alice = server.register("alice")
    original = server.post(alice, "general", "the very first question")
    for i in range(70):
        server.post(alice, "general", f"filler {i}")
    status, _ = server.request(
        "POST",
        "/api/rooms/general/messages",
        {
            "text": "answering the first one",
            "client_id": uuid.uuid4().hex,
            "reply_to": original["id"],
        },
        alice,
    )
    assert status == 200
    bob: Page = new_page()
    sign_up(bob, "bob")
    reply = message(bob, "answering the first one")
    expect(reply).to_be_visible()
    # The original is not loaded yet (history comes 50 at a time).
    expect(message(bob, "the very first question")).to_have_count(0)
    expect(reply.locator(".reply-quote")).to_have_text("In reply to an earlier message")

    reply.locator(".reply-quote").click()
    first = message(bob, "the very first question")
    expect(first).to_be_in_viewport()
    expect(first).to_have_class(re.compile(r"\bflash\b"))
    expect(reply.locator(".reply-quote")).to_have_text("In reply to alice: the very first question")
