"""The Store contract for accounts and moderation (admin_queries.py), on SQLite and
PostgreSQL (tests/store/conftest.py): roles, flags, sessions by user, password resets,
account deletion, the audit log, room administration."""

from __future__ import annotations

import trio

from nochat.store import DELETED_BY_MODERATOR, AppendRequest, Room, Store, now_ms
from nochat.store.log_queries import DELETED_USER


async def _general(store: Store) -> Room:
    room = await store.room("general")
    assert room is not None
    return room


async def test_admin_store_roles_default_to_member_and_set_role_finds_any_case(
    store: Store,
) -> None:
    ann = await store.create_user("Ann", "h")
    account = await store.account(ann.id)
    assert account is not None and account.role == "member"
    promoted = await store.set_role("ann", "admin")
    assert promoted is not None and promoted.role == "admin" and promoted.name == "Ann"
    assert (await store.account_by_name("ANN")) == promoted
    assert await store.set_role("nobody", "admin") is None


async def test_admin_store_flags_and_session_listing(store: Store) -> None:
    bob = await store.create_user("bob", "h")
    later = now_ms() + 60_000
    first = await store.create_session(bob.id, later, "10.0.0.1")
    second = await store.create_session(bob.id, later, "10.0.0.2")
    await store.set_account_flag(bob.id, "banned_ms", 5)
    await store.set_account_flag(bob.id, "muted_until", later)
    account = await store.account(bob.id)
    assert account is not None
    assert (account.banned_ms, account.muted_until, account.disabled_ms) == (5, later, None)
    assert account.sessions == 2
    listed = await store.user_sessions(bob.id)
    assert {s.id for s in listed} == {first.id, second.id}
    assert {s.address for s in listed} == {"10.0.0.1", "10.0.0.2"}
    assert all(s.created > 0 and s.last_used >= s.created for s in listed)
    ended = await store.end_sessions(bob.id, keep=second.id)
    assert ended == [first.id]
    assert await store.session(first.id) is None
    assert await store.session(second.id) is not None
    await store.set_account_flag(bob.id, "banned_ms", None)
    account = await store.account(bob.id)
    assert account is not None and account.banned_ms is None and account.sessions == 1


async def test_admin_store_accounts_search_and_page(store: Store) -> None:
    for name in ("alpha", "alpine", "beta", "al_x"):
        await store.create_user(name, "h")
    found = await store.accounts("AL", after=None, limit=2)
    assert [a.name for a in found] == ["al_x", "alpha"]
    more = await store.accounts("al", after="alpha", limit=2)
    assert [a.name for a in more] == ["alpine"]
    assert [a.name for a in await store.accounts("_", after=None, limit=9)] == ["al_x"]


async def test_admin_store_reset_token_works_once_and_a_new_one_replaces_it(
    store: Store,
) -> None:
    cat = await store.create_user("cat", "h")
    await store.put_reset(cat.id, "old", now_ms() + 60_000)
    await store.put_reset(cat.id, "new", now_ms() + 60_000)
    assert await store.take_reset("old") is None
    assert await store.take_reset("new") == cat.id
    assert await store.take_reset("new") is None
    await store.put_reset(cat.id, "stale", now_ms() - 1)
    assert await store.take_reset("stale") is None


async def test_admin_store_deleted_account_frees_the_name_and_shows_as_deleted_user(
    store: Store,
) -> None:
    dan = await store.create_user("dan", "h")
    session = await store.create_session(dan.id, now_ms() + 60_000)
    general = await _general(store)
    await store.append(AppendRequest(general, dan, "hello from dan", "c1"))
    ended = await store.delete_account(dan.id)
    assert ended == [session.id]
    assert await store.session(session.id) is None
    assert await store.account(dan.id) is None
    assert await store.user_credentials("dan") is None
    page = await store.history(general, before=None, after=None, limit=10)
    assert [(m.user, m.text) for m in page] == [(DELETED_USER, "hello from dan")]
    replayed = await store.replay(general, after=0, limit=10)
    assert [e.user for e in replayed] == [DELETED_USER]
    again = await store.create_user("dan", "h2")  # the name is free
    assert again.id != dan.id


async def test_admin_store_audit_newest_first_paged(store: Store) -> None:
    for i in range(3):
        await store.add_audit("root", "ban", f"u{i}", f'{{"n": {i}}}')
    newest = await store.audit_page(before=None, limit=2)
    assert [e.target for e in newest] == ["u2", "u1"]
    assert newest[0].actor == "root" and newest[0].action == "ban" and newest[0].ts > 0
    rest = await store.audit_page(before=newest[-1].id, limit=2)
    assert [e.target for e in rest] == ["u0"]


async def test_admin_store_room_administration(store: Store) -> None:
    eve = await store.create_user("eve", "h")
    fay = await store.create_user("fay", "h")
    room = await store.create_room("plans", private=False, owner=eve)
    await store.add_member(room, fay)
    listed = await store.admin_rooms("pla", after=None, limit=10)
    assert [(r.name, r.owner, r.members, r.private, r.archived) for r in listed] == [
        ("plans", "eve", 2, False, False)
    ]
    await store.set_archived(room.id, True)
    await store.make_private(room.id)
    await store.set_owner(room.id, fay.id)
    changed = await store.room("plans")
    assert changed is not None
    assert (changed.archived, changed.private, changed.owner_id) == (True, True, fay.id)
    await store.remove_member(room.id, eve.id)
    assert await store.members(changed) == ["fay"]
    admin_view = await store.admin_room("plans")
    assert admin_view is not None
    assert (admin_view.archived, admin_view.private, admin_view.owner) == (True, True, "fay")
    assert admin_view.members == 1 and admin_view.created > 0
    assert await store.admin_room("nope") is None
    await store.set_archived(room.id, False)
    unarchived = await store.room("plans")
    assert unarchived is not None and not unarchived.archived


async def test_admin_store_deleted_room_is_gone_and_its_name_free(store: Store) -> None:
    gus = await store.create_user("gus", "h")
    room = await store.create_room("secret", private=False, owner=gus)
    await store.append(AppendRequest(room, gus, "needle in the haystack", "c1"))
    await store.delete_room(room.id)
    assert await store.room("secret") is None
    assert "secret" not in [r.name for r in await store.admin_rooms("", after=None, limit=50)]
    assert await store.search(gus, "needle", room=None, before=None, limit=10) == []
    page = await store.history(room, before=None, after=None, limit=10)
    assert [m.text for m in page] == [""]
    again = await store.create_room("secret", private=False, owner=gus)
    assert again.id != room.id


async def test_admin_store_moderator_delete_of_anyones_message_is_marked(store: Store) -> None:
    hal = await store.create_user("hal", "h")
    mod = await store.create_user("mod", "h")
    general = await _general(store)
    ack = await store.append(AppendRequest(general, hal, "spam spam", "c1"))
    with trio.fail_after(10):
        await store.append(
            AppendRequest(general, mod, DELETED_BY_MODERATOR, "m1", "delete", ack.id)
        )
    (tombstone,) = await store.history(general, before=None, after=None, limit=10)
    assert tombstone.deleted and tombstone.deleted_by == DELETED_BY_MODERATOR
    assert tombstone.text == ""
    events = await store.replay(general, after=0, limit=10)
    assert [(e.kind, e.payload) for e in events] == [
        ("message", ""),
        ("delete", DELETED_BY_MODERATOR),
    ]


async def test_admin_store_user_delete_is_not_marked_moderator(store: Store) -> None:
    ivy = await store.create_user("ivy", "h")
    general = await _general(store)
    ack = await store.append(AppendRequest(general, ivy, "oops", "c1"))
    await store.append(AppendRequest(general, ivy, "", "c2", "delete", ack.id))
    (tombstone,) = await store.history(general, before=None, after=None, limit=10)
    assert tombstone.deleted and tombstone.deleted_by is None
