"""A member's own account in the chat (change password, delete my account) and the /reset
page an admin's one-time link opens, in real Chromium against a real `nochat serve`."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import NochatServer
from .ui import PASSWORD, expect_in_chat, log_in, message, sign_up

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a brand new passphrase"


def account_dialog(page: Page) -> Any:
    page.get_by_role("button", name="Account").click()
    dialog = page.get_by_role("dialog", name="Account")
    expect(dialog).to_be_visible()
    return dialog


def test_changing_the_password_signs_out_the_other_sessions(
    new_page: Any, server: NochatServer
) -> None:
    server.register("bob")
    here: Page = new_page()
    log_in(here, "bob")
    elsewhere: Page = new_page()
    log_in(elsewhere, "bob")

    dialog = account_dialog(here)
    dialog.get_by_label("Current password").fill("not my password")
    dialog.get_by_label("New password").fill(NEW_PASSWORD)
    dialog.get_by_role("button", name="Change password").click()
    expect(dialog.locator("#password-error")).to_have_text("That is not your current password.")

    dialog.get_by_label("Current password").fill(PASSWORD)
    dialog.get_by_label("New password").fill(NEW_PASSWORD)
    dialog.get_by_role("button", name="Change password").click()
    expect(dialog.locator("#password-error")).to_have_text(
        "Password changed. Your other sessions were signed out."
    )
    # The other session's socket closed 4001: back to the sign-in form. This one stays.
    expect(elsewhere.get_by_role("button", name="Log in")).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(here.locator("#status")).to_have_attribute("data-state", "connected")
    log_in(elsewhere, "bob", NEW_PASSWORD)


def test_deleting_my_account_leaves_my_messages_to_a_deleted_user(
    new_page: Any, server: NochatServer
) -> None:
    token = server.register("bob")
    server.post(token, "general", "something I said once")
    bob: Page = new_page()
    log_in(bob, "bob")
    dialog = account_dialog(bob)
    dialog.get_by_label("Your password").fill(PASSWORD)
    dialog.get_by_role("button", name="Delete my account").click()
    expect(bob.locator("#auth-error")).to_have_text("Your account has been deleted.")

    reader: Page = new_page()
    sign_up(reader, "cid")
    said = message(reader, "something I said once")
    expect(said.locator(".author")).to_have_text("deleted user")
    # The name is free again (docs/PROTOCOL.md): a new bob does not inherit anything.
    newcomer: Page = new_page()
    sign_up(newcomer, "bob")


def test_an_admins_reset_link_sets_a_new_password_once(new_page: Any, server: NochatServer) -> None:
    server.register("ann")
    server.promote("ann")
    server.register("bob")
    admin: Page = new_page()
    log_in(admin, "ann")
    admin.get_by_role("link", name="Admin").click()
    admin.get_by_label("Search users").fill("bob")
    admin.get_by_role("button", name="Manage bob", exact=True).click()
    admin.get_by_role("button", name="Reset password").click()
    link = admin.get_by_label("One-time reset link")
    expect(link).to_be_visible()
    url = link.input_value()
    assert url.startswith(f"{server.url}/reset#"), url

    bob: Page = new_page(goto=False)
    bob.goto(url)
    expect(bob).to_have_url(f"{server.url}/reset")  # the token left the address bar
    bob.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    bob.get_by_label("New password again").fill(NEW_PASSWORD)
    bob.get_by_role("button", name="Set password").click()
    expect(bob.get_by_role("status")).to_contain_text("Your password is set")
    bob.get_by_role("link", name="Log in").click()
    log_in(bob, "bob", NEW_PASSWORD)
    expect_in_chat(bob)

    again: Page = new_page(goto=False)
    again.goto(url)
    again.get_by_label("New password", exact=True).fill("yet another passphrase")
    again.get_by_label("New password again").fill("yet another passphrase")
    again.get_by_role("button", name="Set password").click()
    expect(again.get_by_role("alert")).to_have_text(
        "This link has expired or was already used. Ask an admin for a new one."
    )
