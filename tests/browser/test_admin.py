"""The admin page (/admin) in real Chromium against a real `nochat serve`: an admin bans a
spammer, removes a message, mutes someone, reads the audit log and the live charts; a member
is turned away."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import NochatServer
from .ui import PASSWORD, expect_in_chat, log_in, message, send, sign_up

pytestmark = pytest.mark.browser

#: The admin page polls /api/admin/stats every 10 s, and the server samples every 10 s.
CHART_TIMEOUT_MS = 45_000


def open_admin(page: Page) -> None:
    """From the chat, by the sidebar's Admin link."""
    page.get_by_role("link", name="Admin").click()
    expect(page).to_have_url(re.compile(r"/admin#users$"))
    expect(page.get_by_role("tab", name="Users")).to_have_attribute("aria-selected", "true")


def admin_page(new_page: Any, server: NochatServer, name: str = "ann") -> Page:
    server.register(name)
    server.promote(name)
    page: Page = new_page()
    log_in(page, name)
    open_admin(page)
    return page


def manage_user(page: Page, name: str) -> None:
    page.get_by_label("Search users").fill(name)
    page.get_by_role("button", name=f"Manage {name}", exact=True).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()


def confirm(page: Page, action: str) -> None:
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=action, exact=True).click()
    expect(dialog).to_be_hidden()


def audit_actions(page: Page) -> list[str]:
    page.get_by_role("tab", name="Audit log").click()
    rows = page.locator("#audit-table tbody tr[data-action]")
    expect(rows.first).to_be_visible()
    return [str(a) for a in rows.evaluate_all("rows => rows.map(r => r.dataset.action)")]


def test_admin_bans_a_spammer_whose_socket_closes_and_sign_in_fails(
    new_page: Any, server: NochatServer
) -> None:
    admin = admin_page(new_page, server)
    spammer: Page = new_page()
    sign_up(spammer, "spam")
    send(spammer, "BUY NOW, cheap pills")

    manage_user(admin, "spam")
    admin.get_by_role("button", name="Ban", exact=True).click()
    confirm(admin, "Ban")
    expect(admin.get_by_role("alert").filter(has_text="spam is banned.")).to_be_visible()
    row = admin.locator("#users-table tr[data-user=spam]")
    expect(row.locator(".badge", has_text="banned")).to_be_visible()

    # The spammer's socket was closed 4003: their page says so and shows the sign-in form.
    expect(spammer.locator("#auth-error")).to_have_text("You have been banned from this server.")
    expect(spammer.get_by_role("button", name="Log in")).to_be_visible()
    spammer.get_by_label("Username", exact=True).fill("spam")
    spammer.get_by_label("Password", exact=True).fill(PASSWORD)
    spammer.get_by_role("button", name="Log in").click()
    expect(spammer.locator("#auth-error")).to_have_text("This account is banned.")

    assert audit_actions(admin)[0] == "ban"
    expect(admin.locator("#audit-table tr[data-action=ban] td").nth(3)).to_have_text("spam")


def test_admin_removes_a_message_for_everyone_live_and_in_history(
    new_page: Any, server: NochatServer
) -> None:
    admin = admin_page(new_page, server)
    bob_token = server.register("bob")
    server.post(bob_token, "general", "a message against the rules")
    reader: Page = new_page()
    sign_up(reader, "cid")
    expect(message(reader, "a message against the rules")).to_be_visible()

    admin.get_by_role("tab", name="Rooms").click()
    admin.get_by_role("button", name="Manage general").click()
    admin.get_by_role("button", name="Remove message by bob").click()
    confirm(admin, "Remove")
    expect(admin.get_by_role("alert").filter(has_text="Removed bob's message.")).to_be_visible()
    expect(admin.get_by_role("button", name="Remove message by bob")).to_have_count(0)

    removed = reader.locator("#messages li.msg.deleted")
    expect(removed).to_have_count(1)
    expect(removed.locator(".text")).to_have_text("This message was removed by a moderator.")
    expect(message(reader, "a message against the rules")).to_have_count(0)
    reader.reload()
    expect_in_chat(reader)
    expect(reader.locator("#messages li.msg.deleted .text")).to_have_text(
        "This message was removed by a moderator."
    )
    expect(reader.get_by_text("a message against the rules")).to_have_count(0)
    assert "delete_message" in audit_actions(admin)


def test_admin_disables_and_re_enables_an_account(new_page: Any, server: NochatServer) -> None:
    admin = admin_page(new_page, server)
    bob: Page = new_page()
    sign_up(bob, "bob")
    manage_user(admin, "bob")
    admin.get_by_role("button", name="Disable").click()
    expect(admin.get_by_role("alert").filter(has_text="bob is disabled")).to_be_visible()
    expect(admin.locator("#user-detail .badge", has_text="disabled")).to_be_visible()
    # bob's socket closed 4001: signed out; signing in is refused while disabled.
    expect(bob.get_by_role("button", name="Log in")).to_be_visible()
    bob.get_by_label("Username", exact=True).fill("bob")
    bob.get_by_label("Password", exact=True).fill(PASSWORD)
    bob.get_by_role("button", name="Log in").click()
    expect(bob.locator("#auth-error")).to_have_text(
        "This account is disabled. Ask an admin to re-enable it."
    )
    admin.get_by_role("button", name="Re-enable").click()
    expect(admin.locator("#user-detail .badge", has_text="disabled")).to_have_count(0)
    log_in(bob, "bob")
    assert audit_actions(admin)[:2] == ["enable", "disable"]


def test_a_member_opening_admin_is_refused(new_page: Any, server: NochatServer) -> None:
    token = server.register("bob")
    page: Page = new_page()
    log_in(page, "bob")
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    page.goto("/admin")
    expect_in_chat(page)  # sent back to the chat
    expect(page.locator("#admin")).to_have_count(0)
    status, body = server.request("GET", "/api/admin/users", token=token)
    assert (status, body["error"]["code"]) == (403, "forbidden")

    visitor: Page = new_page(goto=False)
    visitor.goto("/admin")
    expect(visitor.get_by_role("button", name="Log in")).to_be_visible()  # to the sign-in form


def test_a_demoted_admin_is_sent_back_to_the_chat(new_page: Any, server: NochatServer) -> None:
    admin = admin_page(new_page, server)
    server.promote("ann", "demote")
    admin.get_by_role("tab", name="Audit log").click()  # the next admin call answers 403
    expect_in_chat(admin)
    expect(admin.get_by_role("link", name="Admin")).to_have_count(0)


def test_a_muted_member_sees_why_their_send_failed(new_page: Any, server: NochatServer) -> None:
    admin = admin_page(new_page, server)
    bob: Page = new_page()
    sign_up(bob, "bob")

    manage_user(admin, "bob")
    admin.get_by_label("Mute for").select_option(label="1 hour")
    admin.get_by_role("button", name="Mute", exact=True).click()
    expect(admin.get_by_role("alert").filter(has_text="bob is muted.")).to_be_visible()
    expect(admin.locator("#user-detail .badge", has_text="muted")).to_be_visible()
    expect(admin.locator("#user-detail")).to_contain_text("muted until")

    send(bob, "can anyone hear me?")
    failed = message(bob, "can anyone hear me?")
    expect(failed).to_have_attribute("data-state", "failed")
    expect(failed.locator(".state")).to_contain_text("You are muted until")

    admin.get_by_role("button", name="Unmute").click()
    expect(admin.locator("#user-detail .badge", has_text="muted")).to_have_count(0)
    assert audit_actions(admin)[:2] == ["unmute", "mute"]


def test_charts_draw_the_servers_numbers(
    new_page: Any, server: NochatServer, screenshots: Path
) -> None:
    bob: Page = new_page()
    sign_up(bob, "bob")  # online while the charts are read
    admin = admin_page(new_page, server)
    ann = server.login("ann")
    for name in ("cid", "dee", "spammer"):
        token = server.register(name)
        server.post(token, "general", f"hello from {name}")
    for action, name, body in (("mute", "cid", {"seconds": 3600}), ("ban", "spammer", {})):
        status, answer = server.request("POST", f"/api/admin/users/{name}/{action}", body, ann)
        assert status == 200, answer
    online = admin.locator("figure[data-chart=online_users] .chart-now")
    expect(online).to_have_text(re.compile(r"^[1-9]"))
    for i in range(3):
        send(bob, f"message {i}")
    for chart in ("online_users", "messages_per_s", "p99_delivery_ms"):
        svg = admin.locator(f"figure[data-chart={chart}] svg")
        # Three samples (the server takes one at start, then every 10 s) draw a line.
        expect(svg).to_have_attribute(
            "data-samples", re.compile(r"^([3-9]|\d\d+)$"), timeout=CHART_TIMEOUT_MS
        )
        assert svg.locator("polyline").get_attribute("points")
    manage_user(admin, "bob")
    admin.get_by_label("Search users").fill("")
    expect(admin.locator("#users-table tr[data-user=spammer] .badge.danger")).to_have_text("banned")
    admin.get_by_label("Search users").blur()
    admin.screenshot(path=str(screenshots / "admin.png"))


def test_admin_archives_and_deletes_a_room_and_disconnects_a_socket(
    new_page: Any, server: NochatServer
) -> None:
    admin = admin_page(new_page, server)
    bob: Page = new_page()
    sign_up(bob, "bob")

    # Connections: bob's socket, closed 4004 on request; his page stays offline, saying why.
    admin.get_by_role("tab", name="Connections").click()
    row = admin.locator("#connections-table tr[data-user=bob]")
    expect(row).to_have_count(1)
    row.get_by_role("button", name=re.compile(r"^Disconnect bob")).click()
    confirm(admin, "Disconnect")
    expect(bob.locator("#status")).to_have_text(re.compile("Disconnected by an admin"))
    expect(bob.locator("#status")).to_have_attribute("data-state", "offline")
    bob.get_by_role("button", name="Retry now").click()  # a person may reconnect
    expect(bob.locator("#status")).to_have_attribute("data-state", "connected")

    # Rooms: archive general (no sends), then delete a room after typing its name.
    status, body = server.request("POST", "/api/rooms", {"name": "old-news"}, server.login("ann"))
    assert status == 201, body
    admin.get_by_role("tab", name="Rooms").click()
    admin.get_by_role("button", name="Manage general").click()
    admin.locator("#room-detail").get_by_role("button", name="Archive").click()
    expect(admin.locator("#rooms-table tr[data-room=general] .badge.warn")).to_have_text("archived")
    send(bob, "anyone still here?")
    expect(message(bob, "anyone still here?").locator(".state")).to_contain_text(
        "This room is archived"
    )

    admin.get_by_role("button", name="Manage old-news").click()
    admin.locator("#room-detail").get_by_role("button", name="Make private").click()
    expect(admin.locator("#rooms-table tr[data-room=old-news] .badge").first).to_have_text(
        "private"
    )
    admin.locator("#room-detail").get_by_role("button", name="Delete room").click()
    dialog = admin.locator("#confirm-dialog")
    delete = dialog.get_by_role("button", name="Delete room")
    expect(delete).to_be_disabled()
    dialog.get_by_label("Type the room's name to confirm").fill("old-news")
    delete.click()
    expect(admin.get_by_role("alert").filter(has_text="#old-news is deleted.")).to_be_visible()
    expect(admin.locator("#rooms-table tr[data-room=old-news]")).to_have_count(0)
    assert audit_actions(admin)[:4] == ["delete_room", "make_private", "archive", "disconnect"]


def test_the_audit_log_pages_back_from_the_newest(new_page: Any, server: NochatServer) -> None:
    admin = admin_page(new_page, server)
    ann = server.login("ann")
    server.register("bob")
    for seconds in range(1, 53):  # more than one page (50)
        status, body = server.request(
            "POST", "/api/admin/users/bob/mute", {"seconds": seconds}, ann
        )
        assert status == 200, body
    audit_actions(admin)
    rows = admin.locator("#audit-table tbody tr[data-action]")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("seconds: 52")  # newest first
    admin.get_by_role("button", name="Older entries").click()
    expect(rows).to_have_count(53)  # the 52 mutes and, first of all, the CLI's promote
    expect(rows.nth(51)).to_contain_text("seconds: 1")
    expect(rows.last).to_have_attribute("data-action", "promote")
    expect(admin.get_by_role("button", name="Older entries")).to_be_hidden()
