"""The Store contract for files: what the room log says about a send's attachments, on
SQLite and on PostgreSQL (tests/store/conftest.py runs each test on both)."""

from __future__ import annotations

import trio

from nochat.store import AppendRequest, Attachment, Room, SentMessage, Store


async def _general(store: Store) -> Room:
    room = await store.room("general")
    assert room is not None
    return room


def _files(*ids: str) -> tuple[Attachment, ...]:
    return tuple(Attachment(i, f"{i}.bin", 1, "application/octet-stream") for i in ids)


async def test_file_refs_sent_messages_by_user_and_client_id(store: Store) -> None:
    ann = await store.create_user("ann", "h")
    bob = await store.create_user("bob", "h")
    room = await _general(store)
    side = await store.create_room("side", private=False, owner=ann)
    with trio.fail_after(30):
        sent = await store.append(
            AppendRequest(room, ann, "", "c1", attachments=_files("f1", "f2"))
        )
        plain = await store.append(AppendRequest(side, ann, "no files", "c2"))
        gone = await store.append(AppendRequest(room, bob, "x", "c1", attachments=_files("f3")))
        await store.append(AppendRequest(room, bob, "", "d1", "delete", gone.id))
        await store.append(AppendRequest(room, ann, "edited", "e1", "edit", sent.id))
        found = await store.sent_messages(
            [(ann.id, "c1"), (ann.id, "c2"), (bob.id, "c1"), (ann.id, "nope"), (bob.id, "d1")]
        )
    assert sorted(found, key=lambda m: m.id) == sorted(
        [
            SentMessage(ann.id, "c1", sent.id, "general", False, ("f1", "f2")),
            SentMessage(ann.id, "c2", plain.id, "side", False, ()),
            # A delete scrubs the payload, its files list too: `deleted` says it.
            SentMessage(bob.id, "c1", gone.id, "general", True, ()),
        ],
        key=lambda m: m.id,
    )  # the delete ("d1") is no message; an unknown client_id is no row
    assert await store.sent_messages([]) == []


async def test_file_refs_live_messages_leave_out_deleted_and_unknown(store: Store) -> None:
    ann = await store.create_user("ann", "h")
    room = await _general(store)
    with trio.fail_after(30):
        kept = await store.append(AppendRequest(room, ann, "kept", "k1"))
        gone = await store.append(AppendRequest(room, ann, "gone", "g1"))
        delete = await store.append(AppendRequest(room, ann, "", "g2", "delete", gone.id))
        live = await store.live_messages([kept.id, gone.id, delete.id, "0" * 24, kept.id])
    assert live == {kept.id: "general"}
    assert await store.live_messages([]) == {}


async def test_file_refs_live_messages_name_a_deleted_rooms_messages_room_no_more(
    store: Store,
) -> None:
    """A room an admin deleted frees its name: its messages' room is no longer that name,
    so a new room of the old name cannot claim their files."""
    ann = await store.create_user("ann", "h")
    old = await store.create_room("team", private=True, owner=ann)
    with trio.fail_after(30):
        sent = await store.append(AppendRequest(old, ann, "a file", "f1"))
        await store.delete_room(old.id)
        await store.create_room("team", private=True, owner=ann)
        live = await store.live_messages([sent.id])
    assert live.get(sent.id) != "team"
