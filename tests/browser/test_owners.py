"""A private room's owner manages its members from the People panel: removing a member
(whose browser loses the room at once and says so), handing the room over, and members
who are not the owner see no actions. The room's other members see each change live."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, WebSocketRoute, expect

from .conftest import NochatServer
from .ui import expect_in_chat, message, room_button, send, sign_up, status

pytestmark = pytest.mark.browser


def _team(server: NochatServer, owner: str, *members: str) -> None:
    """`owner` (signed up in a page already) makes the private room `team` with `members`."""
    token = server.login(owner)
    status_code, _ = server.request("POST", "/api/rooms", {"name": "team", "private": True}, token)
    assert status_code == 201
    for name in members:
        status_code, _ = server.request("POST", "/api/rooms/team/members", {"user": name}, token)
        assert status_code == 200


def _open_team(page: Page) -> None:
    room_button(page, "team").click()
    expect(page.get_by_role("heading", name="# team", exact=True)).to_be_visible()


def _person(page: Page, name: str) -> Locator:
    return page.locator(f"#member-list li[data-user={name}]")


def _confirm(page: Page, action: str, says: str) -> None:
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(says)
    dialog.get_by_role("button", name=action, exact=True).click()
    expect(dialog).to_be_hidden()


def _recording_relay(page: Page, sent: list[dict[str, Any]]) -> dict[str, WebSocketRoute]:
    """Pass every frame through; keep what the page sends (parsed) and the latest route."""
    routes: dict[str, WebSocketRoute] = {}

    def relay(route: WebSocketRoute) -> None:
        upstream = route.connect_to_server()

        def to_server(frame: str | bytes) -> None:
            sent.append(json.loads(frame))
            upstream.send(frame)

        route.on_message(to_server)
        upstream.on_message(route.send)
        routes["page"] = route

    page.route_web_socket("**/ws", relay)
    return routes


def test_owner_removes_a_member_on_a_phone_who_loses_the_room_live(
    new_page: Any, server: NochatServer
) -> None:
    # The owner on a phone, with the keyboard; the member on a laptop, watched on the wire.
    ann: Page = new_page(width=390, height=844, is_mobile=True, has_touch=True)
    sign_up(ann, "ann")
    bob: Page = new_page(goto=False)
    sent: list[dict[str, Any]] = []
    routes = _recording_relay(bob, sent)
    bob.goto("/")
    sign_up(bob, "bob")
    cat: Page = new_page()
    sign_up(cat, "cat")
    _team(server, "ann", "bob", "cat")
    _open_team(bob)
    _open_team(cat)
    ann.get_by_role("button", name="Show rooms").click()
    _open_team(ann)
    ann.get_by_role("button", name="People").click()
    expect(ann.locator("#people")).to_be_in_viewport(ratio=1)
    expect(_person(ann, "ann")).to_contain_text("owner")
    expect(_person(ann, "bob")).to_be_visible()
    expect(_person(cat, "bob")).to_be_visible()

    menu = ann.get_by_role("button", name="Actions for bob")
    expect(menu).to_be_in_viewport()
    menu.focus()
    ann.keyboard.press("Enter")
    remove = ann.get_by_role("menuitem", name="Remove from room")
    expect(remove).to_be_focused()
    ann.keyboard.press("ArrowDown")
    expect(ann.get_by_role("menuitem", name="Make owner")).to_be_focused()
    ann.keyboard.press("ArrowUp")
    expect(remove).to_be_focused()
    ann.keyboard.press("Enter")
    _confirm(ann, "Remove", "bob loses the room")

    # The owner's list is the server's answer; the other member's is told live.
    expect(_person(ann, "bob")).to_have_count(0)
    expect(_person(cat, "bob")).to_have_count(0)
    expect(_person(cat, "cat")).to_be_visible()
    # bob's browser says so, and moves to general: team is gone from his sidebar.
    notice = bob.get_by_role("status").filter(has_text="You were removed from #team.")
    expect(notice).to_be_visible()
    expect(bob.get_by_role("heading", name="# general", exact=True)).to_be_visible()
    expect(room_button(bob, "team")).to_have_count(0)

    # After a reconnect bob's socket re-joins general, never team.
    joins_before = len(sent)
    routes["page"].close(code=4000, reason="test: network blip")
    ann.keyboard.press("Escape")  # the People drawer closes
    ann.get_by_role("button", name="Show rooms").click()
    room_button(ann, "general").click()
    send(ann, "hello general")
    # Only a connection that joined general after the blip carries it to bob.
    expect(message(bob, "hello general")).to_be_visible()
    expect(status(bob)).to_have_attribute("data-state", "connected")
    rejoined = [f["room"] for f in sent[joins_before:] if f.get("type") == "join"]
    assert "general" in rejoined and "team" not in rejoined
    expect(room_button(bob, "team")).to_have_count(0)


def test_owner_hands_over_and_non_owners_see_no_actions(
    new_page: Any, server: NochatServer
) -> None:
    ann: Page = new_page()
    sign_up(ann, "ann")
    bob: Page = new_page()
    sign_up(bob, "bob")
    _team(server, "ann", "bob")
    _open_team(ann)
    _open_team(bob)

    # bob is a member, not the owner: the owner is marked, and he gets no actions.
    expect(_person(bob, "ann")).to_contain_text("owner")
    expect(_person(bob, "bob")).to_be_visible()
    expect(bob.get_by_role("button", name="Actions for ann")).to_have_count(0)
    expect(bob.get_by_role("button", name="Add member")).to_be_hidden()
    expect(ann.get_by_role("button", name="Add member")).to_be_visible()
    # Nobody has actions in a public room.
    room_button(ann, "general").click()
    expect(_person(ann, "bob")).to_be_visible()
    expect(ann.locator("#member-list button")).to_have_count(0)
    _open_team(ann)

    ann.get_by_role("button", name="Actions for bob").click()
    ann.get_by_role("menuitem", name="Make owner").click()
    _confirm(ann, "Make owner", "you will no longer own it")
    expect(_person(ann, "bob")).to_contain_text("owner")
    expect(_person(ann, "ann")).not_to_contain_text("owner")
    expect(ann.get_by_role("button", name="Actions for bob")).to_have_count(0)
    expect(ann.get_by_role("button", name="Add member")).to_be_hidden()
    # bob's page hears it live: he owns the room and manages ann now.
    expect(_person(bob, "bob")).to_contain_text("owner")
    expect(bob.get_by_role("button", name="Actions for ann")).to_be_visible()

    # A refusal shows the server's message: the room changes hands while bob is asked.
    bob.get_by_role("button", name="Actions for ann").click()
    bob.get_by_role("menuitem", name="Remove from room").click()
    expect(bob.locator("#confirm-dialog")).to_be_visible()
    bob_token = server.login("bob")
    status_code, _ = server.request("POST", "/api/rooms/team/owner", {"name": "ann"}, bob_token)
    assert status_code == 200
    _confirm(bob, "Remove", "ann loses the room")
    expect(bob.locator("#people-error")).to_have_text(
        "only the room's owner (or an admin) manages its members"
    )
    expect(bob.get_by_role("button", name="Actions for ann")).to_have_count(0)
    expect(_person(bob, "ann")).to_contain_text("owner")

    # An admin deletes the room: both pages say so and lose it.
    root = server.register("root")
    server.promote("root")
    status_code, _ = server.request("DELETE", "/api/admin/rooms/team", token=root)
    assert status_code == 204
    for page in (ann, bob):
        expect(page.get_by_role("status").filter(has_text="#team was deleted.")).to_be_visible()
        expect_in_chat(page)
        expect(room_button(page, "team")).to_have_count(0)
