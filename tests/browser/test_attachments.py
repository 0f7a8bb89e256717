"""Attachments in the chat model: a Not-sent message keeps its files for Retry, replies quote
a message by its files, an edit keeps them, and a deleted message shows none."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from .conftest import NochatServer
from .test_files import PDF, drop_files, picture
from .test_message_actions import action
from .ui import RECONNECT_TIMEOUT_MS, composer, message, messages, send, sign_up, status

pytestmark = pytest.mark.browser

LONG = "a text the server refuses"


def attach(page: Page, files: list[tuple[str, str, bytes]]) -> None:
    """Drop files and wait until each is uploaded (ready to go with the next message)."""
    drop_files(page, files)
    uploads = page.locator("#uploads li.upload")
    expect(uploads.and_(page.locator("[data-state=done]"))).to_have_count(len(files))


def thumb(msg: Locator) -> Locator:
    return msg.locator(".attachments a.thumb img")


def test_attachments_go_again_with_retry_under_the_same_client_id(
    new_page: Any, server: NochatServer
) -> None:
    server.env = {"NOCHAT_MAX_TEXT_CHARS": "10"}
    server.restart()
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    attach(alice, [("harbour.png", "image/png", picture())])
    send(alice, LONG)
    failed = message(alice, LONG)
    expect(failed).to_have_attribute("data-state", "failed")
    expect(thumb(failed)).to_have_attribute("alt", "harbour.png")  # still shown, not lost
    expect(alice.locator("#uploads li.upload")).to_have_count(0)  # it went with the message
    client_id = failed.get_attribute("data-client-id")

    server.env = {}
    server.restart()
    expect(status(alice)).to_have_attribute("data-state", "connected", timeout=RECONNECT_TIMEOUT_MS)
    failed.get_by_role("button", name="Retry").click()
    expect(message(alice, LONG)).to_have_attribute("data-state", "delivered")
    expect(thumb(message(alice, LONG))).to_be_visible()
    expect(thumb(message(bob, LONG))).to_have_attribute("alt", "harbour.png")
    stored = server.history(server.login("bob"), "general")
    assert [(m["client_id"], [a["name"] for a in m["attachments"]]) for m in stored] == [
        (client_id, ["harbour.png"])
    ]


def test_attachments_in_replies_edits_and_deletes(new_page: Any, server: NochatServer) -> None:
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    # Files alone, no text: a reply quotes the message by its files.
    attach(alice, [("minutes.pdf", "application/pdf", PDF)])
    alice.get_by_role("button", name="Send").click()
    files_only = messages(bob).filter(has=bob.locator("a.file-card"))
    expect(files_only.locator(".file-name")).to_have_text("minutes.pdf")
    action(files_only, "Reply").click()
    attach(bob, [("harbour.png", "image/png", picture())])
    send(bob, "the harbour, for the minutes")
    for page in (alice, bob):
        reply = message(page, "the harbour, for the minutes")
        expect(reply.locator(".reply-quote")).to_contain_text("alice: minutes.pdf")
        expect(thumb(reply)).to_be_visible()

    # An edit changes the text and keeps the files.
    attach(alice, [("notes.pdf", "application/pdf", PDF)])
    send(alice, "more notes")
    expect(message(alice, "more notes")).to_have_attribute("data-state", "delivered")
    action(message(alice, "more notes"), "Edit").click()
    composer(alice).fill("more notes, edited")
    composer(alice).press("Enter")
    for page in (alice, bob):
        edited = message(page, "more notes, edited")
        expect(edited.locator(".edited")).to_be_visible()
        expect(edited.locator(".file-name")).to_have_text("notes.pdf")

    # A blank edit is no edit, even with a file ready: edit mode stays, the file stays too.
    attach(alice, [("later.pdf", "application/pdf", PDF)])
    action(message(alice, "more notes, edited"), "Edit").click()
    composer(alice).fill("")
    composer(alice).press("Enter")
    expect(alice.locator("#composer-context")).to_contain_text("Editing")
    expect(alice.locator("#uploads li.upload")).to_have_count(1)
    composer(alice).press("Escape")
    expect(alice.locator("#composer-context")).to_be_hidden()

    # Deleted: the tombstone only, no files, live and after a reload.
    alice.once("dialog", lambda d: d.accept())
    action(message(alice, "more notes, edited"), "Delete").click()
    for page in (alice, bob, None):
        if page is None:
            bob.reload()
            page = bob
        tomb = messages(page).filter(has=page.locator(".tombstone"))
        expect(tomb).to_have_count(1)
        expect(tomb.locator(".attachments")).to_have_count(0)
        expect(messages(page).locator("a.file-card .file-name")).to_have_text(["minutes.pdf"])
