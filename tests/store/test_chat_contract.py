"""The Store contract for the chat model: edits, deletes and reactions as room-log events,
on SQLite and on PostgreSQL (tests/store/conftest.py runs each test on both).

Author rules, idempotent retries, tombstones that leave no text behind (in the SQLite
file, in PostgreSQL's rows), reactions added, removed and no-ops, history folded to the
current state, replay in one order, and unread counting messages only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import pytest
import trio

from nochat.broker.feed import StoreFeed
from nochat.errors import Conflict, Forbidden, NotFound
from nochat.store import (
    AppendRequest,
    Attachment,
    Event,
    Room,
    Store,
    User,
    UserStatus,
    reaction_payload,
)
from nochat.store.postgres import PostgresStore
from nochat.store.sqlite import SQLiteStore

from .conftest import Backend


async def _general(store: Store) -> Room:
    room = await store.room("general")
    assert room is not None
    return room


def _edit(room: Room, user: User, target: str, text: str, cid: str) -> AppendRequest:
    return AppendRequest(room, user, text, cid, "edit", target)


def _delete(room: Room, user: User, target: str, cid: str) -> AppendRequest:
    return AppendRequest(room, user, "", cid, "delete", target)


def _react(room: Room, user: User, target: str, emoji: str, on: bool, cid: str) -> AppendRequest:
    return AppendRequest(room, user, reaction_payload(emoji, on), cid, "reaction", target)


async def test_chat_edit_is_an_event_and_history_shows_the_latest_text(store: Store) -> None:
    ann = await store.create_user("ann", "h")
    room = await _general(store)
    committed: list[Event] = []
    store.on_commit = lambda batch: committed.extend(batch)
    sent = await store.append(AppendRequest(room, ann, "helo", "m1"))
    edit = await store.append(_edit(room, ann, sent.id, "hello", "e1"))
    assert edit.seq == sent.seq + 1 and edit.id != sent.id
    again = await store.append(_edit(room, ann, sent.id, "hello?", "e1"))  # a retry
    assert again == edit
    assert await store.head_seq(room) == 2
    [m] = await store.history(room, before=None, after=None, limit=10)
    assert (m.id, m.text, m.edited_ts, m.deleted) == (sent.id, "hello", edit.ts, False)
    replayed = await store.replay(room, after=0, limit=10)
    assert [(e.seq, e.kind, e.target, e.payload) for e in replayed] == [
        (1, "message", None, "helo"),
        (2, "edit", sent.id, "hello"),
    ]
    assert [(e.seq, e.kind) for e in committed] == [(1, "message"), (2, "edit")]


async def test_chat_only_the_author_edits_a_live_message_of_the_room(store: Store) -> None:
    ann = await store.create_user("ann", "h")
    bob = await store.create_user("bob", "h")
    room = await _general(store)
    other = await store.create_room("other", private=False, owner=ann)
    sent = await store.append(AppendRequest(room, ann, "mine", "m1"))
    with pytest.raises(Forbidden):
        await store.append(_edit(room, bob, sent.id, "yours", "b1"))
    with pytest.raises(NotFound):
        await store.append(_edit(room, ann, "00ff", "nothing", "a1"))
    with pytest.raises(NotFound):  # the id is of another room's message
        await store.append(_edit(other, ann, sent.id, "elsewhere", "a2"))
    assert await store.head_seq(room) == 1
    [m] = await store.history(room, before=None, after=None, limit=10)
    assert (m.text, m.edited_ts) == ("mine", None)


async def test_chat_delete_leaves_a_tombstone_and_refuses_later_changes(store: Store) -> None:
    ann = await store.create_user("ann", "h")
    bob = await store.create_user("bob", "h")
    room = await _general(store)
    sent = await store.append(AppendRequest(room, ann, "oops", "m1"))
    await store.append(_react(room, bob, sent.id, "👍", True, "r1"))
    await store.append(_edit(room, ann, sent.id, "oops again", "e1"))
    with pytest.raises(Forbidden):  # a public room: only the author
        await store.append(_delete(room, bob, sent.id, "bd"))
    gone = await store.append(_delete(room, ann, sent.id, "d1"))
    assert await store.append(_delete(room, ann, sent.id, "d1")) == gone  # a retry
    for change in (
        _delete(room, ann, sent.id, "d2"),
        _edit(room, ann, sent.id, "back", "e2"),
        _react(room, bob, sent.id, "🎉", True, "r2"),
    ):
        with pytest.raises(Conflict) as caught:
            await store.append(change)
        assert caught.value.code == "deleted"
    [m] = await store.history(room, before=None, after=None, limit=10)
    assert (m.id, m.deleted, m.text, m.reactions) == (sent.id, True, "", {})
    replayed = await store.replay(room, after=0, limit=10)
    assert [(e.kind, e.payload) for e in replayed] == [
        ("message", ""),
        ("reaction", "+👍"),
        ("edit", ""),
        ("delete", ""),
    ]


async def test_chat_the_private_rooms_owner_deletes_anyones_message(store: Store) -> None:
    ann = await store.create_user("ann", "h")
    bob = await store.create_user("bob", "h")
    room = await store.create_room("team", private=True, owner=ann)
    await store.add_member(room, bob)
    sent = await store.append(AppendRequest(room, bob, "spam", "m1"))
    await store.append(_delete(room, ann, sent.id, "d1"))
    [m] = await store.history(room, before=None, after=None, limit=10)
    assert m.deleted
    dm = await store.open_dm(ann, bob)
    said = await store.append(AppendRequest(dm, bob, "psst", "m2"))
    with pytest.raises(Forbidden):  # a DM has no owner
        await store.append(_delete(dm, ann, said.id, "d2"))


async def test_chat_reactions_add_remove_and_no_ops(store: Store) -> None:
    ann = await store.create_user("ann", "h")
    bob = await store.create_user("bob", "h")
    room = await _general(store)
    sent = await store.append(AppendRequest(room, ann, "lunch?", "m1"))
    off_first = await store.append(_react(room, bob, sent.id, "👍", False, "r0"))
    assert (off_first.id, off_first.seq) == (sent.id, sent.seq)  # nothing to remove
    on = await store.append(_react(room, bob, sent.id, "👍", True, "r1"))
    twice = await store.append(_react(room, bob, sent.id, "👍", True, "r2"))
    assert (twice.id, twice.seq) == (on.id, on.seq) and twice.client_id == "r2"
    await store.append(_react(room, ann, sent.id, "👍", True, "r3"))
    await store.append(_react(room, ann, sent.id, ":tada:", True, "r4"))
    assert await store.head_seq(room) == 4
    [m] = await store.history(room, before=None, after=None, limit=10)
    assert m.reactions == {"👍": ["bob", "ann"], ":tada:": ["ann"]}
    off = await store.append(_react(room, bob, sent.id, "👍", False, "r5"))
    again = await store.append(_react(room, bob, sent.id, "👍", False, "r6"))
    assert (again.id, again.seq) == (off.id, off.seq)
    assert await store.append(_react(room, bob, sent.id, "👍", True, "r1")) == on  # a retry
    [m] = await store.history(room, before=None, after=None, limit=10)
    assert m.reactions == {"👍": ["ann"], ":tada:": ["ann"]}
    assert await store.head_seq(room) == 5


async def test_chat_history_pages_count_messages_only(store: Store) -> None:
    ann = await store.create_user("ann", "h")
    bob = await store.create_user("bob", "h")
    room = await _general(store)
    await store.add_member(room, bob)
    ids = [(await store.append(AppendRequest(room, ann, f"m{i}", f"m{i}"))).id for i in range(4)]
    for i, target in enumerate(ids):
        await store.append(_react(room, ann, target, "👀", True, f"r{i}"))
    await store.append(_edit(room, ann, ids[0], "m0!", "e0"))
    page = await store.history(room, before=None, after=None, limit=2)
    assert [m.text for m in page] == ["m2", "m3"]
    page = await store.history(room, before=page[0].seq, after=None, limit=10)
    assert [m.text for m in page] == ["m0!", "m1"]
    page = await store.history(room, before=None, after=0, limit=3)
    assert [m.text for m in page] == ["m0!", "m1", "m2"]
    views, _ = await store.rooms_for(bob, after=None, limit=10)
    [general] = [v for v in views if v.name == "general"]
    assert (general.head_seq, general.unread) == (9, 4)  # reactions, edits are not unread


async def test_chat_a_deleted_text_leaves_no_trace_in_storage(backend: Backend) -> None:
    secret = "zebrasecret" + "x" * 40
    edited = "quaggasecret" + "y" * 40
    async with trio.open_nursery() as nursery:
        store = backend.make()
        with trio.fail_after(30):
            await nursery.start(store.run)
        ann = await store.create_user("ann", "h")
        room = await _general(store)
        sent = await store.append(AppendRequest(room, ann, secret, "m1"))
        await store.append(AppendRequest(room, ann, "kept words", "m2"))
        await store.append(_edit(room, ann, sent.id, edited, "e1"))
        await store.append(_delete(room, ann, sent.id, "d1"))
        store.close()  # run() returns once the files are closed: the nursery waits for it
    if isinstance(store, SQLiteStore):
        path = store.path
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        data = b"".join(p.read_bytes() for p in files)
        assert b"kept words" in data  # the reading works: a live text is found
        assert b"zebrasecret" not in data and b"quaggasecret" not in data
        return
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.url) as conn:
        rows = conn.execute("SELECT payload FROM events").fetchall()
    texts = " ".join(r[0] for r in rows)
    assert "kept words" in texts
    assert "zebrasecret" not in texts and "quaggasecret" not in texts


async def test_chat_search_finds_current_text_the_user_can_see(store: Store) -> None:
    ann = await store.create_user("ann", "h")
    bob = await store.create_user("bob", "h")
    general = await _general(store)
    secret = await store.create_room("secret", private=True, owner=ann)
    old = await store.append(AppendRequest(general, ann, "the Blue whale sings", "m1"))
    edited = await store.append(AppendRequest(general, ann, "a green whale", "m2"))
    await store.append(_edit(general, ann, edited.id, "a red whale", "e1"))
    gone = await store.append(AppendRequest(general, bob, "a whale to delete", "m3"))
    await store.append(_delete(general, bob, gone.id, "d1"))
    hidden = await store.append(AppendRequest(secret, ann, "whale in private", "m4"))
    await store.append(AppendRequest(general, ann, "nothing here", "m5"))

    hits = await store.search(bob, "whale", room=None, before=None, limit=10)
    assert [(h.id, h.text) for h in hits] == [
        (edited.id, "a red whale"),
        (old.id, "the Blue whale sings"),
    ]
    assert hits[1].snippet == "the Blue «whale» sings" and hits[1].seq == old.seq
    assert (hits[0].room, hits[0].user) == ("general", "ann")
    assert await store.search(bob, "green", room=None, before=None, limit=10) == []  # edited away
    assert await store.search(bob, "delete", room=None, before=None, limit=10) == []
    assert await store.search(bob, "private", room=None, before=None, limit=10) == []
    mine = await store.search(ann, "whale", room=None, before=None, limit=10)
    assert [h.id for h in mine] == [hidden.id, edited.id, old.id]
    assert [
        h.id for h in await store.search(ann, "WHALE blue", room=None, before=None, limit=10)
    ] == [old.id]
    page = await store.search(ann, "whale", room=None, before=None, limit=2)
    rest = await store.search(ann, "whale", room=None, before=page[-1].id, limit=2)
    assert [h.id for h in page + rest] == [hidden.id, edited.id, old.id]
    only = await store.search(ann, "whale", room=general, before=None, limit=10)
    assert [h.id for h in only] == [edited.id, old.id]
    assert await store.search(ann, '"whale" OR *', room=None, before=None, limit=10) == []


async def test_chat_broker_gap_fill_reads_every_kind(store: Store) -> None:
    """The broker fills a gap from the store (StoreFeed): edits, deletes and reactions
    are in the range as well as messages, or a node would wait forever on their seqs."""
    ann = await store.create_user("ann", "h")
    room = await _general(store)
    sent = await store.append(AppendRequest(room, ann, "hi", "m1"))
    await store.append(_react(room, ann, sent.id, "👍", True, "r1"))
    await store.append(_edit(room, ann, sent.id, "hey", "e1"))
    got = await StoreFeed(store).fetch_range("general", 0, 3)
    assert [(json.loads(text)["type"], seq) for text, seq in got] == [
        ("message", 1),
        ("reaction", 2),
        ("edit", 3),
    ]


async def test_chat_replies_and_mentions_are_stored_and_counted(store: Store) -> None:
    ann = await store.create_user("ann", "h")
    bob = await store.create_user("Bob", "h")
    cat = await store.create_user("cat", "h")
    general = await _general(store)
    team = await store.create_room("team", private=True, owner=ann)
    await store.add_member(team, bob)
    for room in (general, team):
        await store.add_member(room, ann)
    await store.add_member(general, bob)
    first = await store.append(
        AppendRequest(general, ann, "hi @bob and @cat, mail a@cat.org", "m1")
    )
    reply = await store.append(AppendRequest(general, bob, "@ann: yes", "m2", reply_to=first.id))
    await store.append(AppendRequest(team, ann, "@bob @cat @nobody see this", "m3"))
    with pytest.raises(NotFound):  # a reply names a message of the same room
        await store.append(AppendRequest(team, ann, "x", "m4", reply_to=first.id))
    page = await store.history(general, before=None, after=None, limit=10)
    assert [(m.reply_to, m.mentions) for m in page] == [
        (None, ["Bob", "cat"]),
        (first.id, ["ann"]),
    ]
    [secret] = await store.history(team, before=None, after=None, limit=10)
    assert secret.mentions == ["Bob"]  # cat cannot see the private room
    replayed = await store.replay(general, after=1, limit=10)
    assert [(e.id, e.reply_to, e.mentions) for e in replayed] == [(reply.id, first.id, ["ann"])]
    views, _ = await store.rooms_for(bob, after=None, limit=10)
    counts = {v.name: (v.unread, v.mentions) for v in views}
    assert counts == {"general": (0, 0), "team": (1, 1)}  # bob wrote in general after it
    views, _ = await store.rooms_for(cat, after=None, limit=10)
    assert [(v.name, v.member) for v in views] == [("general", False)]
    await store.add_member(general, cat)
    views, _ = await store.rooms_for(cat, after=None, limit=10)
    assert [(v.name, v.unread, v.mentions) for v in views] == [("general", 2, 1)]
    await store.set_read(general, cat, first.seq)
    views, _ = await store.rooms_for(cat, after=None, limit=10)
    assert [(v.unread, v.mentions) for v in views] == [(1, 0)]


async def test_chat_status_persists_across_reopen(backend: Backend) -> None:
    async with _running(backend) as first:
        ann = await first.create_user("ann", "h")
        assert await first.status(ann) == UserStatus("ann", "online", "", None)
        await first.set_last_seen(ann, 1234)
        await first.set_status(ann, "busy", "in a meeting")
        await first.set_status(ann, "away", "lunch")
    async with _running(backend) as second:
        assert await second.status(ann) == UserStatus("ann", "away", "lunch", 1234)
        await second.set_last_seen(ann, 5678)
        assert await second.status(ann) == UserStatus("ann", "away", "lunch", 5678)


@asynccontextmanager
async def _running(backend: Backend) -> AsyncIterator[Store]:
    async with trio.open_nursery() as nursery:
        s = backend.make()
        with trio.fail_after(30):
            await nursery.start(s.run)
        try:
            yield s
        finally:
            s.close()


async def test_chat_search_of_a_message_with_files_sees_its_text_only(store: Store) -> None:
    """A message's files ride its payload (store.pack_payload); search sees the text."""
    room = await store.room("general")
    assert room is not None
    ann = await store.create_user("ann", "h")
    files = (Attachment("f" * 32, "harbour.png", 10, "image/png", 4, 2),)
    with trio.fail_after(10):
        await store.append(AppendRequest(room, ann, "sunset photos", "s1", attachments=files))
        (hit,) = await store.search(ann, "sunset", room=None, before=None, limit=10)
        assert hit.text == "sunset photos" and "attachments" not in hit.snippet
        assert await store.search(ann, "content_type", room=None, before=None, limit=10) == []
        (page,) = await store.history(room, before=None, after=None, limit=10)
        assert page.attachments == files and page.text == "sunset photos"


async def test_chat_a_retried_no_op_reaction_stays_a_no_op(store: Store) -> None:
    """A reaction that changed nothing (added twice) is acked without an event; its
    retry after a later change (the reaction removed) must get that same ack, not add
    the reaction again: a client that lost both acks and retries both in order ends
    where it would have without the loss."""
    ann = await store.create_user("ann", "h")
    room = await _general(store)
    sent = await store.append(AppendRequest(room, ann, "hi", "m1"))
    on = await store.append(_react(room, ann, sent.id, "👍", True, "r1"))
    twice = await store.append(_react(room, ann, sent.id, "👍", True, "r2"))  # a no-op
    off = await store.append(_react(room, ann, sent.id, "👍", False, "r3"))
    assert await store.append(_react(room, ann, sent.id, "👍", True, "r2")) == twice
    assert await store.append(_react(room, ann, sent.id, "👍", False, "r3")) == off
    assert (twice.id, twice.seq) == (on.id, on.seq)
    assert await store.head_seq(room) == 3
    [m] = await store.history(room, before=None, after=None, limit=10)
    assert m.reactions == {}
    nothing = await store.append(_react(room, ann, sent.id, "🎉", False, "r4"))  # a no-op too
    await store.append(_react(room, ann, sent.id, "🎉", True, "r5"))
    assert await store.append(_react(room, ann, sent.id, "🎉", False, "r4")) == nothing
    [m] = await store.history(room, before=None, after=None, limit=10)
    assert m.reactions == {"🎉": ["ann"]}
    other = await store.create_room("other", private=False, owner=ann)
    with pytest.raises(Conflict):  # the same client_id in another room is not a retry
        await store.append(_react(other, ann, sent.id, "👍", True, "r2"))
