"""End-to-end on PostgreSQL: a subset of the e2e suite against a PostgreSQL-backed server,
and two servers ("nodes") on one database sharing the token secret, epoch and seqs."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from ..services_pg import PgServer
from ..support import Api, HttpError, RunningServer, make_settings, start_server, ws_connect
from . import test_access, test_chat, test_chat_model, test_files, test_history, test_resume

#: PostgreSQL restarts and the pool reconnects within this bound.
RECOVERY_S = 30.0

#: e2e tests that run again here unchanged, on a server whose store is PostgreSQL.
SUBSET: list[Callable[..., Awaitable[None]]] = [
    test_chat.test_chat_two_users_see_same_order_and_sender_gets_ack,
    test_resume.test_resume_socket_retry_with_same_client_id_is_stored_once,
    test_resume.test_resume_since_delivers_exactly_the_missed_messages_then_live,
    test_history.test_history_paging_backwards_returns_every_message_once_in_order,
    test_history.test_history_room_list_counts_unread_after_read_marker,
    test_access.test_access_private_room_is_invisible_to_non_members,
    test_access.test_access_dm_is_shared_by_two_and_found_again,
    # The chat model and files on the shared store (and its blob store) end to end.
    test_chat_model.test_chat_model_changes_are_acked_fanned_out_and_replayed,
    test_chat_model.test_chat_model_rest_twins_dedup_on_client_id,
    test_chat_model.test_chat_model_search_over_rest,
    test_chat_model.test_chat_model_room_pushed_on_being_added_shows_its_real_unread,
    test_files.test_files_original_image_is_served_without_exif_gps,
    test_files.test_files_attachment_validation,
    test_files.test_files_deleting_the_message_deletes_its_files,
]


@pytest.fixture
async def pg_server(nursery: trio.Nursery, tmp_path: Path, pg_url: str) -> RunningServer:
    return await start_server(nursery, make_settings(tmp_path / "data", database_url=pg_url))


@pytest.mark.parametrize("case", SUBSET, ids=lambda case: case.__name__)
async def test_postgres_e2e_subset(
    case: Callable[..., Awaitable[None]], pg_server: RunningServer
) -> None:
    assert type(pg_server.services.store).__name__ == "PostgresStore"
    args: dict[str, Any] = {"api": Api(pg_server.http)}
    for name in inspect.signature(case).parameters:
        if name.endswith("server"):
            args[name] = pg_server
    await case(**{name: args[name] for name in inspect.signature(case).parameters})


async def test_postgres_two_nodes_share_secret_epoch_and_seqs(
    nursery: trio.Nursery, tmp_path: Path, pg_url: str
) -> None:
    # No NOCHAT_SECRET: each node reads the signing secret from the database.
    one, two = [
        await start_server(nursery, make_settings(tmp_path / name, database_url=pg_url, secret=""))
        for name in ("one", "two")
    ]
    ann = await Api(one.http).signup("ann")
    ann_on_two = Api(two.http, ann.token)  # a token from node one
    assert (await ann_on_two.get("/api/me"))["name"] == "ann"
    async with ws_connect(one, ann.token) as a, ws_connect(two, ann.token) as b:
        joined_a, joined_b = await a.join(), await b.join()
        assert joined_a["epoch"] == joined_b["epoch"]
        await a.say("from one", client_id="x1")
        assert (await a.expect("ack", client_id="x1"))["seq"] == 1
        await b.say("from two", client_id="x2")
        assert (await b.expect("ack", client_id="x2"))["seq"] == 2
        # A retry landing on the other node gets the original ack.
        await b.say("from one", client_id="x1")
        assert (await b.expect("ack", client_id="x1"))["seq"] == 1
    page = await ann_on_two.get("/api/rooms/general/messages")
    assert [(m["seq"], m["text"]) for m in page["messages"]] == [(1, "from one"), (2, "from two")]
    assert not (tmp_path / "one" / "secret.key").exists()


@pytest.mark.slow
async def test_postgres_outage_answers_503_and_sends_resume_when_it_returns(
    nursery: trio.Nursery, tmp_path: Path, own_postgres: PgServer
) -> None:
    server = await start_server(
        nursery, make_settings(tmp_path / "data", database_url=own_postgres.url())
    )
    ann = await Api(server.http).signup("ann")
    first = await ann.post("/api/rooms/general/messages", {"text": "one", "client_id": "a"})
    await trio.to_thread.run_sync(own_postgres.stop, "fast")
    with pytest.raises(HttpError) as caught:
        await ann.post("/api/rooms/general/messages", {"text": "two", "client_id": "b"})
    assert (caught.value.status, caught.value.body["error"]["code"]) == (503, "unavailable")
    await trio.to_thread.run_sync(own_postgres.start)
    # Across a process boundary: poll, bounded, until the pool has reconnected.
    with trio.fail_after(RECOVERY_S):
        while True:
            try:
                again = await ann.post(
                    "/api/rooms/general/messages", {"text": "two", "client_id": "b"}
                )
                break
            except HttpError as exc:
                assert exc.status == 503
                await trio.sleep(0.2)
    assert (first["seq"], again["seq"]) == (1, 2)


async def test_postgres_a_nul_in_text_is_refused_and_fails_nobody_elses_send(
    nursery: trio.Nursery, tmp_path: Path, pg_url: str
) -> None:
    # PostgreSQL's text cannot hold U+0000: stored, it would fail the whole group commit.
    server = await start_server(nursery, make_settings(tmp_path / "d", database_url=pg_url))
    ann = await Api(server.http).signup("ann")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        await a.send(type="send", room="general", text="bad\x00text", client_id="nul")
        await a.send(type="send", room="general", text="fine", client_id="ok")
        error = await a.expect("error")
        assert error["code"] == "nul_in_text"
        assert (await a.expect("ack", client_id="ok"))["seq"] == 1
    page = await ann.get("/api/rooms/general/messages")
    assert [m["text"] for m in page["messages"]] == ["fine"]
