"""Retries never duplicate; a client that rejoins with `since` gets exactly what it missed."""

from __future__ import annotations

from pathlib import Path

import trio

from ..support import Api, RunningServer, make_settings, start_server, ws_connect


async def test_resume_socket_retry_with_same_client_id_is_stored_once(
    server: RunningServer, api: Api
) -> None:
    ann = await api.signup("ann")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        await a.send(type="send", room="general", text="once", client_id="c-1", ref=1)
        first = await a.expect("ack", ref=1)
        await a.send(type="send", room="general", text="once", client_id="c-1", ref=2)
        again = await a.expect("ack", ref=2)
    assert {k: first[k] for k in ("id", "seq", "ts")} == {k: again[k] for k in ("id", "seq", "ts")}
    page = await ann.get("/api/rooms/general/messages")
    assert [m["client_id"] for m in page["messages"]] == ["c-1"]
    assert page["head_seq"] == 1


async def test_resume_rest_retry_matches_socket_ack(server: RunningServer, api: Api) -> None:
    ann = await api.signup("ann")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        await a.send(type="send", room="general", text="x", client_id="shared", ref=1)
        ack = await a.expect("ack", ref=1)
    body = {"text": "x", "client_id": "shared"}
    rest_1 = await ann.post("/api/rooms/general/messages", body)
    rest_2 = await ann.post("/api/rooms/general/messages", body)
    assert rest_1 == rest_2 == {k: ack[k] for k in ("room", "client_id", "id", "seq", "ts")}
    assert (await ann.get("/api/rooms/general/messages"))["head_seq"] == 1


async def test_resume_rest_send_fans_out_to_sockets(server: RunningServer, api: Api) -> None:
    ann, bot = await api.signup("ann"), await api.signup("bot")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        ack = await bot.post("/api/rooms/general/messages", {"text": "beep", "client_id": "b1"})
        (got,) = await a.messages(1)
        assert (got["user"], got["text"], got["seq"], got["id"]) == ("bot", "beep", 1, ack["id"])


async def test_resume_client_id_reused_for_another_room_is_refused(
    server: RunningServer, api: Api
) -> None:
    ann = await api.signup("ann")
    await ann.post("/api/rooms", {"name": "other"})
    async with ws_connect(server, ann.token) as a:
        await a.say("first", client_id="same")
        await a.expect("ack")
        await a.send(type="send", room="other", text="second", client_id="same", ref=9)
        error = await a.expect("error", ref=9)
        assert error["code"] == "duplicate_client_id"


async def _send_n(api: Api, n: int, prefix: str) -> list[int]:
    seqs = []
    for i in range(n):
        ack = await api.post(
            "/api/rooms/general/messages", {"text": f"{prefix}{i}", "client_id": f"{prefix}{i}"}
        )
        seqs.append(ack["seq"])
    return seqs


async def test_resume_since_delivers_exactly_the_missed_messages_then_live(
    server: RunningServer, api: Api
) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        await _send_n(bob, 3, "before")
        last_seen = (await a.messages(3))[-1]["seq"]
    missed = await _send_n(bob, 7, "missed")
    async with ws_connect(server, ann.token) as a:
        joined = await a.join(since=last_seen)
        assert joined["head_seq"] == 10
        replay = await a.messages(7)
        assert [m["seq"] for m in replay] == missed == list(range(4, 11))
        await bob.post("/api/rooms/general/messages", {"text": "live", "client_id": "live"})
        (live,) = await a.messages(1)
        assert (live["seq"], live["text"]) == (11, "live")


async def test_resume_while_messages_keep_arriving_has_no_gap_or_duplicate(
    both_paths_server: RunningServer,
) -> None:
    """Join with since=0 while another client floods the room: one gapless copy of each."""
    server = both_paths_server
    api = Api(server.http)
    ann, bob = await api.signup("ann"), await api.signup("bob")
    total = 600
    async with ws_connect(server, bob.token) as b:
        for i in range(200):
            await b.say(f"early {i}")
        async with ws_connect(server, ann.token) as a, trio.open_nursery() as nursery:

            async def flood() -> None:
                for i in range(total - 200):
                    await b.say(f"late {i}")

            nursery.start_soon(flood)
            await a.join(since=0)
            got = await a.messages(total)
    assert [m["seq"] for m in got] == list(range(1, total + 1))


async def test_resume_after_server_restart_on_same_data_dir(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "data")
    first = await start_server(nursery, settings)
    api = Api(first.http)
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(first, ann.token) as a:
        joined = await a.join()
        epoch = joined["epoch"]
        await _send_n(bob, 2, "one")
        last = (await a.messages(2))[-1]["seq"]
    await _send_n(bob, 3, "two")
    await first.stop()

    second = await start_server(nursery, settings.replace(port=0))
    bob.base = ann.base = second.http  # tokens survive: the secret lives in the data dir
    async with ws_connect(second, ann.token) as a:
        joined = await a.join(since=last, epoch=epoch)
        assert joined["epoch"] == epoch
        replay = await a.messages(3)
        assert [(m["seq"], m["text"]) for m in replay] == [(3, "two0"), (4, "two1"), (5, "two2")]
        await _send_n(bob, 1, "three")
        (live,) = await a.messages(1)
        assert live["seq"] == 6
    await second.stop()


async def test_resume_with_unknown_epoch_or_future_seq_gets_reset(
    server: RunningServer, api: Api
) -> None:
    ann = await api.signup("ann")
    async with ws_connect(server, ann.token) as a:
        await a.send(type="join", room="general", since=0, epoch="not-this-db", ref="r1")
        reset = await a.expect("reset")
        assert reset["ref"] == "r1" and reset["head_seq"] == 0 and reset["epoch"] != "not-this-db"
        await a.send(type="join", room="general", since=99, ref="r2")
        assert (await a.expect("reset"))["ref"] == "r2"
        joined = await a.join(since=0, epoch=reset["epoch"])
        assert joined["head_seq"] == 0
