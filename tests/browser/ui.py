"""What the browser tests do and look at in the NoChat page, in the words a user would use."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Locator, Page, WebSocketRoute, expect

PASSWORD = "correct horse battery"
#: Reconnecting after a server restart may wait out a few backoff steps.
RECONNECT_TIMEOUT_MS = 30_000


def sign_up(page: Page, name: str, password: str = PASSWORD) -> None:
    page.get_by_label("Username", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign up").click()
    expect_in_chat(page)


def log_in(page: Page, name: str, password: str = PASSWORD) -> None:
    page.get_by_label("Username", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect_in_chat(page)


def expect_in_chat(page: Page, room: str = "# general") -> None:
    expect(page.get_by_role("heading", name=room, exact=True)).to_be_visible()
    expect(status(page)).to_have_attribute("data-state", "connected")
    # My own status is shown once the server has told it (until then the dot says offline).
    expect(page.locator("#my-status")).not_to_have_attribute("data-state", "offline")


def status(page: Page) -> Locator:
    return page.locator("#status")


def composer(page: Page) -> Locator:
    return page.get_by_label("Message", exact=True)


def send(page: Page, text: str) -> None:
    box = composer(page)
    box.fill(text)
    box.press("Enter")


def messages(page: Page) -> Locator:
    return page.get_by_role("log").locator("li.msg")


def message(page: Page, text: str) -> Locator:
    """The message whose text is exactly `text`."""
    return messages(page).filter(has=page.locator(".text").get_by_text(text, exact=True))


def room_button(page: Page, label: str) -> Locator:
    return page.locator("#sidebar button.room-link").filter(
        has=page.locator(".room-name").get_by_text(label, exact=True)
    )


def seqs(page: Page) -> Any:
    """The seq of every message shown, top to bottom."""
    return page.locator("#messages li.msg[data-seq]").evaluate_all(
        "nodes => nodes.map(n => Number(n.dataset.seq))"
    )


def relay(page: Page) -> dict[str, WebSocketRoute]:
    """Pass every frame through, and keep the route so a test can inject frames."""
    routes: dict[str, WebSocketRoute] = {}

    def relay_route(route: WebSocketRoute) -> None:
        upstream = route.connect_to_server()
        route.on_message(upstream.send)
        upstream.on_message(route.send)
        routes["page"] = route

    page.route_web_socket("**/ws", relay_route)
    return routes
