"""`@` autocompletes member names; a mention is highlighted, badged, and notifies a hidden tab."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import NochatServer
from .ui import composer, expect_in_chat, message, room_button, send, sign_up

pytestmark = pytest.mark.browser

#: Records every Notification the page raises and every permission request (the real API
#: still runs: the spy wraps it).
SPY = """
(() => {
  const Real = window.Notification;
  window.__notes = [];
  window.__asked = 0;
  class Spy extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notes.push({title, body: options && options.body});
    }
  }
  Spy.requestPermission = (...a) => { window.__asked += 1; return Real.requestPermission(...a); };
  Object.defineProperty(Spy, "permission", { get: () => Real.permission });
  window.Notification = Spy;
})();
"""

MENTION = re.compile(r"\bmention\b")


def set_hidden(page: Page, hidden: bool) -> None:
    """The tab goes to the background (or comes back), as the browser tells the page."""
    page.evaluate(
        """h => {
          Object.defineProperty(document, 'hidden', {configurable: true, get: () => h});
          Object.defineProperty(document, 'visibilityState',
            {configurable: true, get: () => h ? 'hidden' : 'visible'});
          document.dispatchEvent(new Event('visibilitychange'));
        }""",
        hidden,
    )


def test_autocomplete_highlight_badge_and_notification(new_page: Any, server: NochatServer) -> None:
    alice: Page = new_page()
    bob: Page = new_page(goto=False)
    bob.context.grant_permissions(["notifications"])
    bob.add_init_script(SPY)
    bob.goto("/")
    carol: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    sign_up(carol, "carol")
    expect(alice.locator("#member-list li.online", has_text="carol")).to_be_visible()

    # "@" offers the room's people (not me); typing narrows; Enter inserts the name.
    box = composer(alice)
    box.press_sequentially("thanks @")
    listbox = alice.get_by_role("listbox", name="People to mention")
    options = listbox.get_by_role("option").locator(".mention-name")
    expect(options).to_have_text(["bob", "carol"])
    box.press_sequentially("b")
    expect(options).to_have_text(["bob"])
    box.press("Enter")
    expect(box).to_have_value("thanks @bob ")
    expect(options).to_have_count(0)
    # Down then Tab picks the second; Escape closes the list and Enter sends again.
    box.press_sequentially("and @")
    box.press("ArrowDown")
    expect(listbox.get_by_role("option").nth(1)).to_have_attribute("aria-selected", "true")
    box.press("Tab")
    expect(box).to_have_value("thanks @bob and @carol ")
    box.press_sequentially("for @b")
    box.press("Escape")
    expect(options).to_have_count(0)
    box.fill("thanks @bob and @carol!")
    box.press("Enter")

    text = "thanks @bob and @carol!"
    expect(message(bob, text)).to_have_class(MENTION)
    expect(message(carol, text)).to_have_class(MENTION)
    expect(message(alice, text)).not_to_have_class(MENTION)  # my own are not highlighted
    send(alice, "no mention here")
    expect(message(bob, "no mention here")).to_be_visible()
    expect(message(bob, "no mention here")).not_to_have_class(MENTION)

    # Away in another room: the mention counts in the room list's badge.
    bob.get_by_role("button", name="Create room").click()
    bob.get_by_label("Room name").fill("random")
    bob.get_by_role("button", name="Create", exact=True).click()
    expect_in_chat(bob, "# random")
    send(alice, "@bob are you there?")
    send(alice, "plain one")
    badge = room_button(bob, "general").locator(".mentions")
    expect(badge).to_have_text("@1 mentions")
    expect(room_button(bob, "general").locator(".unread")).to_contain_text("2")
    assert bob.evaluate("window.__notes.length") == 0  # the tab is in front: no notification

    # Hidden tab: a mention raises a notification; a plain message does not.
    set_hidden(bob, True)
    send(alice, "plain two")
    send(alice, "@bob look at this")
    expect(room_button(bob, "general").locator(".mentions")).to_have_text("@2 mentions")
    assert bob.evaluate("window.__notes") == [
        {"title": "alice mentioned you in #general", "body": "@bob look at this"}
    ]
    set_hidden(bob, False)
    room_button(bob, "general").click()
    expect(room_button(bob, "general").locator(".mentions")).to_have_count(0)
    # Permission was granted already, so it was never asked for.
    assert bob.evaluate("window.__asked") == 0


def test_notification_permission_is_asked_for_once(new_page: Any) -> None:
    page: Page = new_page(goto=False)
    page.add_init_script(SPY)
    page.goto("/")
    sign_up(page, "dora")  # typing and clicking in the login form asks nothing yet
    assert page.evaluate("[Notification.permission, window.__asked]") == ["default", 0]
    composer(page).click()
    composer(page).press("a")
    page.locator("#room-title").click()
    assert page.evaluate("window.__asked") == 1
    page.reload()
    expect_in_chat(page)
    composer(page).click()
    composer(page).press("b")
    assert page.evaluate("window.__asked") == 0  # this page load (the spy's count) never asked
