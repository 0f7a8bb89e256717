"""A "Not sent" message offers Retry (the same client_id) and Discard."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import NochatServer
from .ui import RECONNECT_TIMEOUT_MS, message, messages, send, sign_up, status

pytestmark = pytest.mark.browser

KEEP = "this one is kept for a retry"
DROP = "this one gets discarded"


def test_not_sent_retry_with_same_client_id_and_discard(
    new_page: Any, server: NochatServer
) -> None:
    # A server that refuses both texts as too long (the page allows 4000 characters).
    server.env = {"NOCHAT_MAX_TEXT_CHARS": "10"}
    server.restart()
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    send(alice, KEEP)
    send(alice, DROP)
    for text in (KEEP, DROP):
        failed = message(alice, text)
        expect(failed).to_have_attribute("data-state", "failed")
        expect(failed.locator(".foot")).to_contain_text("Not sent")
        expect(failed.get_by_role("button", name="Retry")).to_be_visible()
        expect(failed.get_by_role("button", name="Discard")).to_be_visible()
    kept_id = message(alice, KEEP).get_attribute("data-client-id")

    message(alice, DROP).get_by_role("button", name="Discard").click()
    expect(message(alice, DROP)).to_have_count(0)

    # Retrying while the server still refuses fails again, and still offers both.
    message(alice, KEEP).get_by_role("button", name="Retry").click()
    expect(message(alice, KEEP).get_by_role("button", name="Retry")).to_be_visible()

    # With the limit lifted, Retry sends it: once, under the client_id it first had.
    server.env = {}
    server.restart()
    expect(status(alice)).to_have_attribute("data-state", "connected", timeout=RECONNECT_TIMEOUT_MS)
    message(alice, KEEP).get_by_role("button", name="Retry").click()
    expect(message(alice, KEEP)).to_have_attribute("data-state", "delivered")
    expect(message(bob, KEEP)).to_have_count(1)
    token = server.login("bob")
    stored = server.history(token, "general")
    assert [(m["text"], m["client_id"]) for m in stored] == [(KEEP, kept_id)]
    # The discarded one is gone for good, also after a reload.
    alice.reload()
    expect(message(alice, KEEP)).to_have_count(1)
    expect(messages(alice)).to_have_count(1)
