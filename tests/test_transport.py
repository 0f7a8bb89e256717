"""The transport adapter's hooks engage on a real Hypercorn server (the pinned version).

If a Hypercorn upgrade moves the internals `nochat/transport/hypercorn.py` reads, the
hooks fail safe (ASGI sends, wsproto reads) and NoChat still works, only slower: this
test is what notices.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import trio

from nochat.transport import DirectSocket, TakenSocket
from nochat.transport.direct import NONE, TAKEN

from .support import Api, make_settings, start_server, ws_connect


@pytest.mark.parametrize("takeover", [True, False], ids=["taken-over", "hooked"])
async def test_transport_direct_reader_and_writer_engage_on_real_hypercorn(
    nursery: trio.Nursery, tmp_path: Path, takeover: bool
) -> None:
    settings = make_settings(tmp_path / "d", direct_send=True, socket_takeover=takeover)
    server = await start_server(nursery, settings)
    ann = await Api(server.http).signup("ann")
    hub = server.services.hub
    async with ws_connect(server, ann.token) as a:
        await a.join()
        (conns,) = server.services.connections.by_session.values()
        (conn,) = conns
        sink = conn.sub.direct
        assert isinstance(sink, DirectSocket), "the direct writer did not attach"
        assert sink.reading, "the direct reader (wire.FrameReader) did not engage"
        assert isinstance(conn.socket, TakenSocket) is takeover, "the takeover did not engage"
        assert sink.handover == (TAKEN if takeover else NONE)
        before = hub.direct_writes
        await a.say("through the hooks")  # read by FrameReader, echoed by the flusher
        (got,) = await a.messages(1)
        assert got["text"] == "through the hooks"
        assert hub.direct_writes > before, "the event did not go out by the direct writer"


async def test_transport_hooks_stay_off_when_direct_send_is_off(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await start_server(nursery, make_settings(tmp_path / "d", direct_send=False))
    ann = await Api(server.http).signup("ann")
    async with ws_connect(server, ann.token) as a:
        await a.join()
        (conns,) = server.services.connections.by_session.values()
        (conn,) = conns
        assert conn.sub.direct is None
        assert not isinstance(conn.socket, TakenSocket)  # the takeover needs the direct paths
        await a.say("plain")
        assert (await a.messages(1))[0]["text"] == "plain"
    assert server.services.hub.direct_writes == 0


def test_transport_runs_on_the_hypercorn_it_was_read_from() -> None:
    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    assert '"hypercorn==0.18.0"' in pyproject.read_text()
    assert importlib.metadata.version("hypercorn") == "0.18.0"
