"""Admins and moderation end to end on a real server (docs/PROTOCOL.md, "Admin API"):
who may call what, bans and disables closing sockets on the spot, mutes, moderator
deletes live and in history, the audit log, reset links, password change, account
deletion, owners removing members and handing rooms over, live connections."""

from __future__ import annotations

from typing import Any

import pytest

from ..support import Api, HttpError, RunningServer, WsClient, ws_connect

PASSWORD = "correct horse"


async def _admin(api: Api, server: RunningServer, name: str = "root") -> Api:
    """A signed-in admin (promoted in the store, as `nochat admin promote` does)."""
    session = await api.signup(name)
    assert await server.services.store.set_role(name, "admin") is not None
    return session


async def _login(api: Api, name: str, password: str = PASSWORD) -> Api:
    session = await api.post("/api/sessions", {"name": name, "password": password})
    return Api(api.base, session["token"])


async def _error(call: Any) -> HttpError:
    with pytest.raises(HttpError) as caught:
        await call
    return caught.value


async def _next_of(ws: WsClient, kind: str) -> dict[str, Any]:
    """The next event of `kind`, skipping everything else (pings answered)."""
    while True:
        event = await ws.recv()
        if event["type"] == kind:
            return event
        if event["type"] == "ping":
            await ws.send(type="pong")


#: Every /api/admin route: (method, path, body).
ADMIN_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/admin/users", None),
    ("GET", "/api/admin/users/bob", None),
    ("POST", "/api/admin/users/bob/disable", {}),
    ("POST", "/api/admin/users/bob/enable", {}),
    ("POST", "/api/admin/users/bob/ban", {}),
    ("POST", "/api/admin/users/bob/unban", {}),
    ("POST", "/api/admin/users/bob/signout", {}),
    ("POST", "/api/admin/users/bob/mute", {"seconds": 60}),
    ("POST", "/api/admin/users/bob/unmute", {}),
    ("POST", "/api/admin/users/bob/reset-password", {}),
    ("GET", "/api/admin/rooms", None),
    ("GET", "/api/admin/rooms/general/members", None),
    ("POST", "/api/admin/rooms/general/archive", {}),
    ("POST", "/api/admin/rooms/general/unarchive", {}),
    ("POST", "/api/admin/rooms/general/private", {}),
    ("DELETE", "/api/admin/rooms/general", None),
    ("DELETE", "/api/admin/rooms/general/messages/0192aaaaaaaa000000000000", None),
    ("GET", "/api/admin/connections", None),
    ("DELETE", "/api/admin/connections/abcd.1", None),
    ("GET", "/api/admin/audit", None),
    ("GET", "/api/admin/stats", None),
]


async def test_admin_every_route_is_401_without_a_session_and_403_for_a_member(
    server: RunningServer, api: Api
) -> None:
    member = await api.signup("bob")
    for method, path, body in ADMIN_ROUTES:
        anonymous = await _error(api.call(method, path, body))
        assert (anonymous.status, path) == (401, path)
        refused = await _error(member.call(method, path, body))
        assert (refused.status, refused.body["error"]["code"], path) == (403, "forbidden", path)
    # Nothing happened: bob is neither banned nor muted, general is still public.
    me = await member.get("/api/me")
    assert me["role"] == "member"
    rooms = await member.get("/api/rooms")
    assert any(r["name"] == "general" and not r["private"] for r in rooms["rooms"])


async def test_admin_me_says_role_and_a_promoted_user_passes(
    server: RunningServer, api: Api
) -> None:
    root = await _admin(api, server)
    assert (await root.get("/api/me"))["role"] == "admin"
    users = await root.get("/api/admin/users?q=ro")
    assert [u["name"] for u in users["users"]] == ["root"]
    assert users["users"][0]["role"] == "admin" and users["users"][0]["sessions"] == 1
    await server.services.store.set_role("root", "member")  # a demotion counts at once
    assert (await _error(root.get("/api/admin/users"))).status == 403


async def test_admin_ban_closes_the_socket_with_4003_and_sign_in_fails(
    server: RunningServer, api: Api
) -> None:
    root = await _admin(api, server)
    bob = await api.signup("bob")
    async with ws_connect(server, bob.token) as ws:
        await ws.join()
        banned = await root.post("/api/admin/users/bob/ban", {})
        assert banned["banned"] and banned["sessions"] == 0
        assert await ws.closed() == 4003
    login = await _error(api.post("/api/sessions", {"name": "bob", "password": PASSWORD}))
    assert (login.status, login.body["error"]["code"]) == (403, "banned")
    assert (await _error(bob.get("/api/me"))).status == 401  # the old token is dead too
    await root.post("/api/admin/users/bob/unban", {})
    again = await api.post("/api/sessions", {"name": "bob", "password": PASSWORD})
    assert again["token"]


async def test_admin_disable_closes_4001_and_signout_ends_sessions_only(
    server: RunningServer, api: Api
) -> None:
    root = await _admin(api, server)
    bob = await api.signup("bob")
    async with ws_connect(server, bob.token) as ws:
        await ws.join()
        await root.post("/api/admin/users/bob/disable", {})
        assert await ws.closed() == 4001
    login = await _error(api.post("/api/sessions", {"name": "bob", "password": PASSWORD}))
    assert (login.status, login.body["error"]["code"]) == (403, "disabled")
    await root.post("/api/admin/users/bob/enable", {})
    bob = await _login(api, "bob")
    async with ws_connect(server, bob.token) as ws:
        await ws.join()
        out = await root.post("/api/admin/users/bob/signout", {})
        assert out["sessions"] == 0 and not out["disabled"]
        assert await ws.closed() == 4001
    assert (await api.post("/api/sessions", {"name": "bob", "password": PASSWORD}))["token"]


async def test_admin_mute_refuses_sends_edits_and_reactions_until_unmuted(
    server: RunningServer, api: Api
) -> None:
    root = await _admin(api, server)
    bob = await api.signup("bob")
    async with ws_connect(server, bob.token) as ws:
        await ws.join()
        await ws.send(type="send", room="general", text="before", client_id="c0", ref=1)
        ack = await ws.expect("ack", ref=1)
        muted = await root.post("/api/admin/users/bob/mute", {"seconds": 600})
        assert muted["muted_until"] > ack["ts"]
        await ws.send(type="send", room="general", text="spam", client_id="c1", ref=2)
        error = await ws.expect("error", ref=2)
        assert error["code"] == "muted" and error["until"] == muted["muted_until"]
        await ws.send(type="edit", room="general", id=ack["id"], text="x", client_id="c2", ref=3)
        assert (await ws.expect("error", ref=3))["code"] == "muted"
        await ws.send(type="react", room="general", id=ack["id"], emoji="👍", client_id="c3", ref=4)
        assert (await ws.expect("error", ref=4))["code"] == "muted"
        rest = await _error(
            bob.post("/api/rooms/general/messages", {"text": "x", "client_id": "c4"})
        )
        assert (rest.status, rest.body["error"]["code"]) == (403, "muted")
        assert rest.body["error"]["until"] == muted["muted_until"]
        page = await bob.get("/api/rooms/general/messages")  # reading goes on
        assert [m["text"] for m in page["messages"]] == ["before"]
        await root.post("/api/admin/users/bob/unmute", {})
        await ws.send(type="send", room="general", text="sorry", client_id="c5", ref=5)
        assert (await ws.expect("ack", ref=5))["seq"] == 2


async def test_admin_mute_ends_by_itself_when_its_time_is_up(
    server: RunningServer, api: Api
) -> None:
    root = await _admin(api, server)
    bob = await api.signup("bob")
    muted = await root.post("/api/admin/users/bob/mute", {"seconds": 60})
    body = {"text": "x", "client_id": "c1"}
    assert (await _error(bob.post("/api/rooms/general/messages", body))).status == 403
    # The mute's end, without waiting a minute: the moderation clock moved past it.
    server.services.moderation.clock = lambda: muted["muted_until"] + 1
    assert (await bob.post("/api/rooms/general/messages", body))["seq"] == 1


async def test_admin_moderator_delete_reaches_a_live_client_and_history_shows_the_tombstone(
    server: RunningServer, api: Api
) -> None:
    root = await _admin(api, server)
    spammer, reader = await api.signup("spammer"), await api.signup("reader")
    room = await spammer.post("/api/rooms", {"name": "den", "private": True})
    assert room["private"]
    await spammer.post("/api/rooms/den/members", {"user": "reader"})
    sent = await spammer.post("/api/rooms/den/messages", {"text": "buy now", "client_id": "s1"})
    async with ws_connect(server, reader.token) as ws:
        await ws.join("den", since=0)
        assert (await _next_of(ws, "message"))["text"] == "buy now"
        ack = await root.call("DELETE", f"/api/admin/rooms/den/messages/{sent['id']}")
        assert ack["seq"] == 2
        event = await _next_of(ws, "delete")
        assert event == {**event, "id": sent["id"], "by": "moderator", "seq": 2}
    page = await reader.get("/api/rooms/den/messages")
    (tombstone,) = page["messages"]
    assert tombstone["deleted"] and tombstone["by"] == "moderator" and "text" not in tombstone
    async with ws_connect(server, reader.token) as ws:  # a replay says so too
        await ws.join("den", since=0)
        replayed = await _next_of(ws, "delete")
        assert replayed["by"] == "moderator"


async def test_admin_every_action_writes_an_audit_entry_newest_first(
    server: RunningServer, api: Api
) -> None:
    root = await _admin(api, server)
    await api.signup("bob")
    for action in ("disable", "enable", "ban", "unban", "signout", "unmute", "reset-password"):
        await root.post(f"/api/admin/users/bob/{action}", {})
    await root.post("/api/admin/users/bob/mute", {"seconds": 60})
    await root.post("/api/rooms", {"name": "side"})
    for action in ("archive", "unarchive", "private"):
        await root.post(f"/api/admin/rooms/side/{action}", {})
    await root.call("DELETE", "/api/admin/connections/abcd.9")
    await root.call("DELETE", "/api/admin/rooms/side")
    audit = await root.get("/api/admin/audit?limit=100")
    actions = [e["action"] for e in reversed(audit["entries"])]
    assert actions == [
        "disable", "enable", "ban", "unban", "signout", "unmute", "reset_password", "mute",
        "archive", "unarchive", "make_private", "disconnect", "delete_room",
    ]  # fmt: skip
    newest = audit["entries"][0]
    assert (newest["actor"], newest["target"]) == ("root", "side") and newest["ts"] > 0
    assert audit["entries"][5]["detail"] == {"seconds": 60}
    page = await root.get("/api/admin/audit?limit=5")
    rest = await root.get(f"/api/admin/audit?limit=100&before={page['next']}")
    assert [e["id"] for e in page["entries"] + rest["entries"]] == [
        e["id"] for e in audit["entries"]
    ]


async def test_admin_reset_link_works_once_and_ends_every_session(
    server: RunningServer, api: Api
) -> None:
    root = await _admin(api, server)
    bob = await api.signup("bob")
    reset = await root.post("/api/admin/users/bob/reset-password", {})
    assert reset["link"].startswith("/reset#") and reset["expires"] > 0
    token = reset["link"].removeprefix("/reset#")
    async with ws_connect(server, bob.token) as ws:
        await ws.join()
        await api.post("/api/password-reset", {"token": token, "password": "new password!"})
        assert await ws.closed() == 4001
    again = await _error(api.post("/api/password-reset", {"token": token, "password": "x" * 9}))
    assert (again.status, again.body["error"]["code"]) == (400, "invalid_token")
    old = await _error(api.post("/api/sessions", {"name": "bob", "password": PASSWORD}))
    assert old.status == 401
    assert await api.post("/api/sessions", {"name": "bob", "password": "new password!"})


async def test_admin_password_change_ends_the_other_sessions_only(
    server: RunningServer, api: Api
) -> None:
    here = await api.signup("ann")
    there = await _login(api, "ann")
    wrong = await _error(here.call("PUT", "/api/me/password", {"old": "nope", "new": "x" * 9}))
    assert (wrong.status, wrong.body["error"]["code"]) == (403, "bad_credentials")
    async with ws_connect(server, here.token) as mine, ws_connect(server, there.token) as other:
        await mine.join()
        await other.join()
        await here.call("PUT", "/api/me/password", {"old": PASSWORD, "new": "better horse"})
        assert await other.closed() == 4001
        await mine.send(type="send", room="general", text="still here", client_id="c1", ref=1)
        assert (await mine.expect("ack", ref=1))["seq"] == 1
    assert (await here.get("/api/me"))["name"] == "ann"
    assert (await _error(there.get("/api/me"))).status == 401
    assert await api.post("/api/sessions", {"name": "ann", "password": "better horse"})


async def test_admin_account_deletion_leaves_deleted_user_and_frees_the_name(
    server: RunningServer, api: Api
) -> None:
    dan = await api.signup("dan")
    await dan.post("/api/rooms/general/messages", {"text": "goodbye", "client_id": "c1"})
    wrong = await _error(dan.call("DELETE", "/api/me", {"password": "not it"}))
    assert wrong.status == 403
    async with ws_connect(server, dan.token) as ws:
        await ws.join()
        await dan.call("DELETE", "/api/me", {"password": PASSWORD})
        assert await ws.closed() == 4001
    assert (await _error(dan.get("/api/me"))).status == 401
    other = await api.signup("eve")
    page = await other.get("/api/rooms/general/messages")
    assert [(m["user"], m["text"]) for m in page["messages"]] == [("deleted user", "goodbye")]
    fresh = await api.signup("dan")  # the name is free again, with nothing of the old one
    assert (await fresh.get("/api/me"))["name"] == "dan"


async def test_admin_owner_removes_a_member_who_loses_the_room_at_once_and_hands_over(
    server: RunningServer, api: Api
) -> None:
    ann, bob, cat = await api.signup("ann"), await api.signup("bob"), await api.signup("cat")
    await ann.post("/api/rooms", {"name": "club", "private": True})
    for name in ("bob", "cat"):
        await ann.post("/api/rooms/club/members", {"user": name})
    refused = await _error(bob.call("DELETE", "/api/rooms/club/members/cat"))
    assert refused.status == 403
    async with ws_connect(server, bob.token) as ws:
        await ws.join("club")
        left = await ann.call("DELETE", "/api/rooms/club/members/bob")
        assert left["members"] == ["ann", "cat"]
        assert await ws.expect("left", room="club") == {
            "type": "left",
            "room": "club",
            "reason": "removed",
        }
        await ws.send(type="send", room="club", text="still?", client_id="b1", ref=1)
        assert (await ws.expect("error", ref=1))["code"] == "not_found"
    assert (await _error(bob.get("/api/rooms/club/messages"))).status == 404
    not_member = await _error(ann.post("/api/rooms/club/owner", {"name": "bob"}))
    assert (not_member.status, not_member.body["error"]["code"]) == (400, "not_member")
    handed = await ann.post("/api/rooms/club/owner", {"name": "cat"})
    assert handed["name"] == "club"
    # cat owns it now: cat may remove ann, ann may no longer remove anyone.
    assert (await _error(ann.call("DELETE", "/api/rooms/club/members/cat"))).status == 403
    assert (await cat.call("DELETE", "/api/rooms/club/members/ann"))["members"] == ["cat"]


async def test_admin_archived_room_is_readable_not_writable(
    server: RunningServer, api: Api
) -> None:
    root = await _admin(api, server)
    bob = await api.signup("bob")
    await bob.post("/api/rooms/general/messages", {"text": "old", "client_id": "c1"})
    async with ws_connect(server, bob.token) as ws:
        await ws.join()
        archived = await root.post("/api/admin/rooms/general/archive", {})
        assert archived["archived"] and archived["name"] == "general"
        await ws.send(type="send", room="general", text="new", client_id="c2", ref=1)
        assert (await ws.expect("error", ref=1))["code"] == "archived"
    page = await bob.get("/api/rooms/general/messages")
    assert [m["text"] for m in page["messages"]] == ["old"]
    rooms = await root.get("/api/admin/rooms?q=gen")
    assert rooms["rooms"][0]["archived"] and rooms["rooms"][0]["members"] == 1


async def test_admin_deleted_room_takes_its_sockets_out_and_is_gone(
    server: RunningServer, api: Api
) -> None:
    root = await _admin(api, server)
    bob = await api.signup("bob")
    await bob.post("/api/rooms", {"name": "doomed"})
    async with ws_connect(server, bob.token) as ws:
        await ws.join("doomed")
        await root.call("DELETE", "/api/admin/rooms/doomed")
        left = await ws.expect("left", room="doomed")
        assert left["reason"] == "deleted"
    assert (await _error(bob.get("/api/rooms/doomed/messages"))).status == 404
    assert (await bob.post("/api/rooms", {"name": "doomed"}))["name"] == "doomed"


async def test_admin_connections_list_and_disconnect(server: RunningServer, api: Api) -> None:
    root = await _admin(api, server)
    bob = await api.signup("bob")
    async with ws_connect(server, bob.token) as ws:
        await ws.join()
        listed = (await root.get("/api/admin/connections"))["connections"]
        (conn,) = [c for c in listed if c["user"] == "bob"]
        assert conn["rooms"] == ["general"] and conn["address"] == "127.0.0.1"
        assert conn["since"] > 0 and conn["node"] and conn["id"].startswith(conn["node"])
        await root.call("DELETE", f"/api/admin/connections/{conn['id']}")
        assert await ws.closed() == 4004
    detail = await root.get("/api/admin/users/bob")
    (session,) = detail["sessions_list"]
    assert session["address"] == "127.0.0.1" and len(session["id"]) == 12
    assert session["id"] not in bob.token


async def test_admin_stats_has_now_and_series(server: RunningServer, api: Api) -> None:
    root = await _admin(api, server)
    stats = await root.get("/api/admin/stats")
    assert set(stats["now"]) == {"online_users", "connections", "messages_per_s", "p99_delivery_ms"}
    assert set(stats["series"]) == {"online_users", "messages_per_s", "p99_delivery_ms"}
    first = stats["series"]["online_users"][0]
    assert len(first) == 2 and first[0] > 0
