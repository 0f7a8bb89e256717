"""The sign-in screen when the server says "wait": it tells the user how long."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import NochatServer
from .ui import PASSWORD

pytestmark = pytest.mark.browser


def test_login_throttled_sign_in_says_how_long_to_wait(new_page: Any, server: NochatServer) -> None:
    server.env["NOCHAT_LOGIN_FAILURES"] = "1"
    server.env["NOCHAT_LOGIN_WINDOW_S"] = "300"
    server.restart()
    server.register("ann")
    page: Page = new_page()
    error = page.get_by_role("alert")
    page.get_by_label("Username", exact=True).fill("ann")
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(error).to_have_text("Wrong username or password.")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(error).to_have_text("Too many attempts. Try again in 5 minutes.")
