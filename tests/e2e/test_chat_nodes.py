"""The chat model across two nodes (two `nochat serve` processes, one Redis, one
PostgreSQL): a retried edit, delete or reaction, over the socket or REST and through
either node, is applied once; a client on the other node sees each change once, in
seq order, and ends with the same state as REST history."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import trio

from ..support import STEP_S, Api, HttpError, ws_connect
from .test_chat_model import _change, _events, _fold, _rest_state
from .test_scaleout import two_nodes

pytest.importorskip("coredis")


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in ("id", "seq", "ts"))


async def test_chat_nodes_retried_changes_apply_once_on_socket_and_rest(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_nodes(tmp_path, pg_url) as cluster:
        ann_a = await Api(cluster.a.http).signup("ann")
        bob_b = await Api(cluster.b.http).signup("bob")
        ann_b = Api(cluster.b.http, ann_a.token)
        async with (
            ws_connect(cluster.a, ann_a.token) as on_a,
            ws_connect(cluster.b, ann_a.token) as on_b,
            ws_connect(cluster.b, bob_b.token) as bob,
        ):
            for ws in (on_a, on_b, bob):
                await ws.join()
            with trio.fail_after(STEP_S * 3):
                sent = await _change(on_a, 1, type="send", text="helo", client_id="m1")
                path = f"/api/rooms/general/messages/{sent['id']}"
                thumbs = urllib.parse.quote("👍")
                # An edit through A's socket, retried through B's socket and B's REST.
                edit = await _change(
                    on_a, 2, type="edit", id=sent["id"], text="hello", client_id="e1"
                )
                again = await _change(
                    on_b, 3, type="edit", id=sent["id"], text="HELLO", client_id="e1"
                )
                rest = await ann_b.call("PATCH", path, {"text": "hullo", "client_id": "e1"})
                assert _same(again, edit) and _same(rest, edit)
                # A reaction through A's REST, retried through B's socket.
                react = await ann_a.call("PUT", f"{path}/reactions/{thumbs}?client_id=r1")
                retried = await _change(
                    on_b, 4, type="react", id=sent["id"], emoji="👍", on=True, client_id="r1"
                )
                assert _same(retried, react)
                # A no-op (added twice) through A, the reaction removed through B, then
                # the no-op retried through B: still the no-op's ack, nothing added.
                twice = await _change(
                    on_a, 40, type="react", id=sent["id"], emoji="👍", on=True, client_id="r2"
                )
                assert _same(twice, react)
                off = await ann_b.call("DELETE", f"{path}/reactions/{thumbs}?client_id=r3")
                late = await _change(
                    on_b, 41, type="react", id=sent["id"], emoji="👍", on=True, client_id="r2"
                )
                assert _same(late, react) and off["seq"] == react["seq"] + 1
                # A delete through B's socket, retried through A's REST and A's socket:
                # the original ack each time, not `deleted`.
                gone = await _change(on_b, 5, type="delete", id=sent["id"], client_id="d1")
                assert gone["type"] == "ack"
                assert _same(await ann_a.call("DELETE", f"{path}?client_id=d1"), gone)
                assert _same(
                    await _change(on_a, 6, type="delete", id=sent["id"], client_id="d1"), gone
                )
                with pytest.raises(HttpError) as refused:  # a new change: refused
                    await ann_a.call("PATCH", path, {"text": "x", "client_id": "e2"})
                assert refused.value.body["error"]["code"] == "deleted"
                after = await _change(on_a, 7, type="send", text="after", client_id="m2")
                seen = await _events(bob, 6)  # on B, from both nodes' writes
        assert [(e["type"], e["seq"]) for e in seen] == [
            ("message", 1),
            ("edit", 2),
            ("reaction", 3),
            ("reaction", 4),
            ("delete", 5),
            ("message", 6),
        ]
        assert seen[1]["text"] == "hello" and after["seq"] == 6
        assert [e["on"] for e in seen[2:4]] == [True, False]
        page = await bob_b.get("/api/rooms/general/messages")
        assert page["head_seq"] == 6
        assert _fold(seen) == _rest_state(page)
        assert _rest_state(page)[sent["id"]] == {"text": None, "deleted": True, "reactions": {}}
        # A client that was away resumes through A with `since` to the same state.
        async with ws_connect(cluster.a, bob_b.token) as back:
            await back.join(since=0)
            replayed = await _events(back, 6)
        # The same events, in the same order (a replayed deleted message has no text left).
        assert [(e["type"], e["seq"], e["id"]) for e in replayed] == [
            (e["type"], e["seq"], e["id"]) for e in seen
        ]
        assert _fold(replayed) == _fold(seen)
