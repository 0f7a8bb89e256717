"""Files follow the room log through a crash: a server killed (kill -9) after the log
committed a change but before the file catalogue took it, then restarted on the same
storage, on SQLite (the catalogue a second database) and on PostgreSQL.

The file changes that follow a commit (bind a message's files, remove a deleted
message's, free a refused send's) go through an in-memory queue that a crash loses:
tests/write_holds.py holds the catalogue's writes so that the crash comes exactly there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from ..files_client import PDF, http, png, upload_ok
from ..support import STEP_S, Api, HttpError, server_process, ws_connect
from ..write_holds import POLL_S, Hold, WriteHolds


@pytest.fixture(params=["sqlite", "postgres"])
def holds(request: pytest.FixtureRequest, tmp_path: Path) -> WriteHolds:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return WriteHolds(tmp_path / "data", url)


async def _claimed_while_log_waits(
    holds: WriteHolds, file_id: str, send: Callable[[], Awaitable[Any]]
) -> tuple[Any, Hold]:
    """Run `send` with the room log held until its files are claimed, then hold the file
    catalogue and let the append go on: what follows the commit for the files waits.
    What `send` returned, and the catalogue's hold (for after the crash)."""
    log = await holds.hold_log()
    outcome: list[Any] = []

    async def sending() -> None:
        outcome.append(await send())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sending)

        async def claimed() -> bool:
            row = await holds.file_row(file_id)
            return row is not None and row[0] is not None

        await holds.wait_for(claimed)
        files = await holds.hold_files()
        await log.release()
    return outcome[0], files


async def test_files_an_acked_attachment_survives_a_crash_before_its_bind(
    holds: WriteHolds,
) -> None:
    """Acked, then killed before its files were bound: after the restart another member
    downloads the file, history shows it, and deleting the message takes the file with
    it. Before, the file was bound to no message (the bind lived only in the lost
    queue), so the delete found no file of the message: it stayed downloadable."""
    async with server_process(holds.data_dir, **holds.env) as node:
        api = Api(node.http)
        ann, bob = await api.signup("ann"), await api.signup("bob")
        found = await upload_ok(ann, PDF, "kept.pdf")
        body = {"text": "see this", "client_id": "k1", "attachments": [found["id"]]}

        async def send() -> Any:
            return await ann.post("/api/rooms/general/messages", body)

        ack, held = await _claimed_while_log_waits(holds, found["id"], send)
        await holds.crash(node)
    await held.release()
    row = await holds.file_row(found["id"])
    assert row is not None and row[1] is None  # claimed, never bound: the crash came there
    async with server_process(holds.data_dir, **holds.env) as node:
        bob.base = ann.base = node.http
        got = await http(node.http, "GET", f"/api/files/{found['id']}", token=bob.token)
        assert got.status == 200 and got.body == PDF
        history = (await bob.get("/api/rooms/general/messages"))["messages"]
        assert [(m["id"], [f["id"] for f in m["attachments"]]) for m in history] == [
            (ack["id"], [found["id"]])
        ]
        await ann.call("DELETE", f"/api/rooms/general/messages/{ack['id']}?client_id=k2")
        for who in (ann, bob):
            gone = await http(node.http, "GET", f"/api/files/{found['id']}", token=who.token)
            assert gone.status == 404


async def test_files_a_deleted_messages_files_go_though_the_delete_was_lost(
    holds: WriteHolds,
) -> None:
    """The delete committed, then the server died before removing the message's files:
    after the restart they answer 404 to everyone and their bytes (the image and its
    thumbnail) are deleted by the sweep. Before, the files stayed downloadable, bound to a
    message the log says is deleted, and their bytes were never removed."""
    env = {**holds.env, "upload_grace_s": "3"}  # so the blobs' put margin passes soon
    async with server_process(holds.data_dir, **env) as node:
        api = Api(node.http)
        ann, bob = await api.signup("ann"), await api.signup("bob")
        found = await upload_ok(ann, png(), "gone.png")
        ack = await ann.post(
            "/api/rooms/general/messages",
            {"text": "soon gone", "client_id": "d1", "attachments": [found["id"]]},
        )
        path = f"/api/files/{found['id']}"
        assert (await http(node.http, "GET", path, token=bob.token)).status == 200

        async def bound() -> bool:
            row = await holds.file_row(found["id"])
            return row is not None and row[1] == ack["id"]

        await holds.wait_for(bound)
        row = await holds.file_row(found["id"])
        assert row is not None and row[3] is not None
        shas = [row[2], row[3]]  # the image and its thumbnail
        held = await holds.hold_files()
        await ann.call("DELETE", f"/api/rooms/general/messages/{ack['id']}?client_id=d2")
        await holds.crash(node)
    await held.release()
    assert await holds.file_row(found["id"]) is not None  # the crash came before removal
    async with server_process(holds.data_dir, **env) as node:
        for who in (ann, bob):
            for p in (path, path + "/thumbnail"):
                assert (await http(node.http, "GET", p, token=who.token)).status == 404

        async def bytes_gone() -> bool:
            return not any([await holds.blob_exists(sha) for sha in shas])

        await holds.wait_for(bytes_gone)
        assert await holds.file_row(found["id"]) is None


async def test_files_a_refused_sends_files_are_freed_though_the_unclaim_was_lost(
    holds: WriteHolds,
) -> None:
    """The store refused the send (its reply_to is no message) and the server died before
    freeing the files it had claimed: after the restart, once the claim is older than
    NOCHAT_UPLOAD_CLAIM_MARGIN_S, the files attach to a new send. Before, they stayed
    claimed by a message that never was: never attachable, never swept."""
    async with server_process(holds.data_dir, **holds.env) as node:
        api = Api(node.http)
        ann, bob = await api.signup("ann"), await api.signup("bob")
        found = await upload_ok(ann, PDF, "again.pdf")
        async with ws_connect(node, ann.token) as a:
            await a.join()

            async def send() -> Any:
                await a.send(
                    type="send",
                    room="general",
                    text="re",
                    client_id="r1",
                    reply_to="00ff",
                    attachments=[found["id"]],
                    ref=1,
                )
                return await a.expect("error", ref=1)  # refused, its unclaim queued

            refused, held = await _claimed_while_log_waits(holds, found["id"], send)
            assert refused["code"] == "not_found"
            await holds.crash(node)
    await held.release()
    row = await holds.file_row(found["id"])
    assert row is not None and row[0] is not None  # still claimed: the unclaim was lost
    async with server_process(holds.data_dir, **holds.env, upload_claim_margin_s="1") as node:
        ann.base = bob.base = node.http
        body = {"text": "take two", "attachments": [found["id"]]}
        with trio.fail_after(STEP_S * 2):  # another process: poll until its sweep has run
            for attempt in range(10_000):
                try:
                    ack = await ann.post(
                        "/api/rooms/general/messages", {**body, "client_id": f"t{attempt}"}
                    )
                    break
                except HttpError as refusal:
                    assert refusal.body["error"]["code"] == "bad_attachment"
                await trio.sleep(POLL_S * 5)
        got = await http(node.http, "GET", f"/api/files/{found['id']}", token=bob.token)
        assert got.status == 200 and got.body == PDF
        history = (await bob.get("/api/rooms/general/messages"))["messages"]
        assert [(m["id"], [f["id"] for f in m["attachments"]]) for m in history] == [
            (ack["id"], [found["id"]])
        ]
