"""The server restarts under two chatting users: nothing is lost and nothing is doubled."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from .conftest import NochatServer
from .ui import RECONNECT_TIMEOUT_MS, composer, expect_in_chat, message, send, seqs, sign_up, status

pytestmark = pytest.mark.browser


def test_restart_while_typing_delivers_queued_once(new_page: Any, server: NochatServer) -> None:
    alice: Page = new_page()
    bob: Page = new_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    send(bob, "before the restart")
    expect(message(alice, "before the restart")).to_be_visible()

    # Alice is halfway through a message when the server goes down.
    composer(alice).press_sequentially("typed across a restart", delay=10)
    server.stop()
    expect(status(alice)).to_have_attribute("data-state", "reconnecting")
    expect(status(alice)).to_contain_text("Reconnecting")
    expect(status(bob)).to_have_attribute("data-state", "reconnecting")

    # Both send while the server is down: the messages wait as pending.
    composer(alice).press("Enter")
    queued = message(alice, "typed across a restart")
    expect(queued).to_have_attribute("data-state", "pending")
    send(bob, "sent by bob while the server was down")
    expect(message(bob, "sent by bob while the server was down")).to_have_attribute(
        "data-state", "pending"
    )

    server.start()
    # A bot posts over REST as soon as the server is back, while the browsers may still be
    # waiting out their backoff: they must get it by resuming (or live), exactly once.
    bot = server.register("bot")
    server.post(bot, "general", "posted while the browsers reconnect")

    for page in (alice, bob):
        expect(status(page)).to_have_attribute(
            "data-state", "connected", timeout=RECONNECT_TIMEOUT_MS
        )
    expect(queued).to_have_attribute("data-state", "delivered", timeout=RECONNECT_TIMEOUT_MS)
    for page in (alice, bob):
        for text in (
            "typed across a restart",
            "sent by bob while the server was down",
            "posted while the browsers reconnect",
        ):
            expect(message(page, text)).to_have_count(1, timeout=RECONNECT_TIMEOUT_MS)

    # The server stored each message once, and both pages show the same gapless room.
    stored = [m["text"] for m in server.history(bot, "general")]
    assert stored.count("typed across a restart") == 1
    assert stored.count("sent by bob while the server was down") == 1
    assert len(stored) == 4
    assert seqs(alice) == [1, 2, 3, 4]
    assert seqs(bob) == [1, 2, 3, 4]

    # And the connection works as before.
    send(bob, "after the restart")
    expect(message(alice, "after the restart")).to_be_visible()


def test_refused_reconnect_returns_to_login(new_page: Any, server: NochatServer) -> None:
    page: Page = new_page()
    sign_up(page, "frank")
    page.context.clear_cookies()
    server.restart()
    # The handshake is refused (401) without the cookie: the client asks /api/me, learns the
    # session is gone and stops retrying instead of looping forever.
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=RECONNECT_TIMEOUT_MS)
    expect(page.get_by_role("alert")).to_have_text("Your session has ended. Please log in again.")


@pytest.mark.parametrize("lost", ["send", "ack"])
def test_unacked_message_survives_reload(new_page: Any, server: NochatServer, lost: str) -> None:
    """The send (or only its ack) is lost, then the tab reloads: delivered once, stored once."""
    page: Page = new_page(goto=False)
    state = {"lose": False}

    def relay(route: WebSocketRoute) -> None:
        upstream = route.connect_to_server()

        def to_server(frame: str | bytes) -> None:
            if not (state["lose"] and lost == "send" and '"type":"send"' in str(frame)):
                upstream.send(frame)

        def to_page(frame: str | bytes) -> None:
            text = str(frame)
            if not (state["lose"] and lost == "ack" and ('"ack"' in text or '"message"' in text)):
                route.send(frame)

        route.on_message(to_server)
        upstream.on_message(to_page)

    page.route_web_socket("**/ws", relay)
    page.goto("/")
    sign_up(page, f"hank-{lost}")
    state["lose"] = True
    send(page, "written just before a reload")
    expect(message(page, "written just before a reload")).to_have_attribute("data-state", "pending")
    token = server.login(f"hank-{lost}")
    state["lose"] = False
    page.reload()
    expect_in_chat(page)
    expect(message(page, "written just before a reload")).to_have_attribute(
        "data-state", "delivered"
    )
    assert seqs(page) == [1]
    stored = [m["text"] for m in server.history(token, "general")]
    assert stored == ["written just before a reload"]


def test_offline_then_online(new_page: Any, server: NochatServer) -> None:
    page: Page = new_page()
    sign_up(page, "olga")
    page.context.set_offline(True)
    server.restart()  # drops the socket (1012); no network to reconnect over
    expect(status(page)).to_have_attribute("data-state", "offline")
    expect(status(page)).to_contain_text("Offline")
    send(page, "queued while offline")
    expect(message(page, "queued while offline")).to_have_attribute("data-state", "pending")
    page.context.set_offline(False)  # the "online" event reconnects at once
    expect(status(page)).to_have_attribute("data-state", "connected")
    expect(message(page, "queued while offline")).to_have_attribute("data-state", "delivered")


def test_session_is_refreshed_before_it_expires(new_page: Any, server: NochatServer) -> None:
    """With a 6 s session the socket would close with 4001; the client renews it in time."""
    server.env["NOCHAT_TOKEN_TTL_S"] = "6"
    server.restart()
    page: Page = new_page()
    sign_up(page, "rita")
    # Two renewals (at ~80% of each lifetime) take us past the first token's expiry.
    for _ in range(2):
        with page.expect_response("**/api/sessions/refresh", timeout=RECONNECT_TIMEOUT_MS) as r:
            pass
        assert r.value.status == 200
    expect(status(page)).to_have_attribute("data-state", "connected")
    send(page, "still signed in")
    expect(message(page, "still signed in")).to_have_attribute("data-state", "delivered")
    page.reload()
    expect_in_chat(page)
