"""One conversation with every kind of change, as three people see it live (and the README
picture of it): a reply, reactions, an edit, a delete, a mention, code, statuses, an image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .test_attachments import attach
from .test_files import picture
from .test_mentions import MENTION
from .test_message_actions import action, chip
from .test_status import set_status
from .ui import composer, message, send, sign_up

pytestmark = pytest.mark.browser


def test_conversation_with_replies_reactions_edits_and_deletes(
    new_page: Any, screenshots: Path
) -> None:
    alice: Page = new_page(1280, 820)
    bob: Page = new_page()
    carol: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    sign_up(carol, "carol")
    set_status(bob, "Busy", "deep work until 3")
    set_status(carol, "Away", "lunch")

    send(alice, "Release 1.4 is tagged: https://example.com/releases/1.4")
    send(bob, "Great! Did the migration run on staging?")
    send(alice, "Yes, `nochat migrate` took 3 s")
    action(message(alice, "Great! Did the migration run on staging?"), "Reply").click()
    attach(alice, [("staging.png", "image/png", picture(480, 200))])
    send(alice, "and the logs are clean")
    send(carol, "I pasted the wrong link, ignore it")
    send(carol, "Lets ship it on fridya @bob!")
    expect(message(bob, "Lets ship it on fridya @bob!")).to_be_visible()

    composer(carol).press("ArrowUp")
    composer(carol).fill("Let's ship it on Friday, @bob!")
    composer(carol).press("Enter")
    carol.once("dialog", lambda d: d.accept())
    action(message(carol, "I pasted the wrong link, ignore it"), "Delete").click()
    for page, emoji in ((bob, "🎉"), (carol, "🎉"), (carol, "👍")):
        target = message(page, "Release 1.4 is tagged: https://example.com/releases/1.4")
        action(target, "React").click()
        page.get_by_role("dialog", name="Add a reaction").get_by_role("button", name=emoji).click()
        expect(chip(target, emoji)).to_be_visible()

    for page in (alice, bob, carol):
        release = message(page, "Release 1.4 is tagged: https://example.com/releases/1.4")
        expect(chip(release, "🎉").locator(".count")).to_have_text("2")
        expect(chip(release, "👍").locator(".count")).to_have_text("1")
        expect(message(page, "and the logs are clean").locator(".reply-quote")).to_contain_text(
            "bob: Great! Did the migration"
        )
        expect(message(page, "Let's ship it on Friday, @bob!").locator(".edited")).to_be_visible()
        expect(page.locator("li.msg.deleted")).to_have_count(1)
        shot = message(page, "and the logs are clean").locator(".attachments a.thumb img")
        expect(shot).to_have_attribute("alt", "staging.png")
    expect(message(bob, "Let's ship it on Friday, @bob!")).to_have_class(MENTION)
    people = alice.locator("#member-list")
    expect(people.locator("li[data-user=bob]")).to_have_attribute("data-state", "busy")
    expect(people.locator("li[data-user=carol] .person-status")).to_have_text("lunch")
    alice.mouse.move(640, 700)  # off the messages: no hover toolbar in the picture
    composer(alice).press_sequentially("@c")
    expect(alice.get_by_role("listbox", name="People to mention")).to_be_visible()
    alice.screenshot(path=str(screenshots / "conversation.png"))
