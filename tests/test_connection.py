"""One connection's tasks on Trio's mock clock: pings, silence, expiry, bad frames."""

from __future__ import annotations

import json
from pathlib import Path

import trio
import trio.testing

from nochat.app import build_services
from nochat.connection import Connection, Disconnected
from nochat.errors import CloseCode
from nochat.services import Services
from nochat.store import Session, User, now_ms

from .support import make_settings


class FakeSocket:
    """A WebSocket whose peer is the test: frames in through a channel, out into a list."""

    def __init__(self) -> None:
        self._to_server, self._from_client = trio.open_memory_channel[str | bytes | None](16)
        self.sent: list[tuple[float, str]] = []
        self.closed: tuple[float, int] | None = None

    async def accept(self) -> None:
        pass

    async def receive(self) -> str | bytes:
        frame = await self._from_client.receive()
        if frame is None:
            raise Disconnected
        return frame

    async def send(self, data: str) -> None:
        self.sent.append((trio.current_time(), data))

    async def close(self, code: int, reason: str = "") -> None:
        self.closed = (trio.current_time(), code)

    def closed_after(self, start: float) -> tuple[int, int] | None:
        """(whole seconds after `start`, close code) of the server's close, if it closed."""
        if self.closed is None:
            return None
        return round(self.closed[0] - start), self.closed[1]

    def client_sends(self, frame: str | bytes | None) -> None:
        self._to_server.send_nowait(frame)

    def events(self) -> list[tuple[float, str]]:
        out = []
        for at, data in self.sent:
            parsed = json.loads(data)
            for event in parsed if isinstance(parsed, list) else [parsed]:
                out.append((at, event["type"]))
        return out


def _services(tmp_path: Path, **overrides: object) -> Services:
    return build_services(make_settings(tmp_path / "d", **overrides))


async def _run(svc: Services, sock: FakeSocket, session_ms: int = 10**9) -> Connection:
    """Serve one connection (with the app's keepalive task) until it ends."""
    conn = Connection(svc, User(1, "ann"), Session("s1", 1, now_ms() + session_ms), sock)
    async with trio.open_nursery() as nursery:
        await nursery.start(svc.keepalive.run)
        await conn.serve(sock.accept)
        nursery.cancel_scope.cancel()
    return conn


async def test_connection_pings_on_schedule_and_closes_silent_client_4002(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    svc = _services(tmp_path, ping_interval_s=25.0, pong_timeout_s=60.0)
    sock = FakeSocket()
    start = trio.current_time()
    sock.client_sends('{"type":"pong"}')
    await _run(svc, sock)
    pings = [round(at - start) for at, kind in sock.events() if kind == "ping"]
    assert pings == [25, 50]
    assert sock.closed_after(start) == (60, CloseCode.NO_PONG)
    assert svc.hub.connection_count() == 0
    assert len(svc.keepalive) == 0  # a closed connection is no longer watched


async def test_connection_any_frame_resets_the_silence_deadline(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    svc = _services(tmp_path, ping_interval_s=25.0, pong_timeout_s=60.0)
    sock = FakeSocket()
    start = trio.current_time()
    sock.client_sends('{"type":"pong"}')
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_run, svc, sock)
        await trio.sleep(55)
        sock.client_sends('{"type":"pong"}')
    assert sock.closed_after(start) == (115, CloseCode.NO_PONG)


async def test_connection_session_expiry_closes_4001(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    svc = _services(tmp_path, ping_interval_s=25.0, pong_timeout_s=60.0)
    sock = FakeSocket()
    start = trio.current_time()
    sock.client_sends('{"type":"pong"}')
    await _run(svc, sock, session_ms=30_000)
    assert sock.closed_after(start) == (30, CloseCode.TOKEN_EXPIRED)


async def test_connection_no_first_frame_closes_4002(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    svc = _services(tmp_path, first_frame_timeout_s=10.0)
    sock = FakeSocket()
    start = trio.current_time()
    await _run(svc, sock)
    assert sock.closed_after(start) == (10, CloseCode.NO_PONG)


async def test_connection_binary_and_empty_frames_get_errors_and_it_stays_open(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    svc = _services(tmp_path, ping_interval_s=25.0, pong_timeout_s=60.0)
    sock = FakeSocket()
    for frame in (b"\x00", b"", "{"):
        sock.client_sends(frame)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_run, svc, sock)
        await trio.sleep(1)
        errors = [json.loads(data) for _, data in sock.sent]
        flat = [e for x in errors for e in (x if isinstance(x, list) else [x])]
        assert [e["code"] for e in flat] == ["unsupported_frame", "unsupported_frame", "bad_json"]
        assert sock.closed is None
        nursery.cancel_scope.cancel()


async def test_connection_client_disconnect_ends_it_without_a_close_frame(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    svc = _services(tmp_path)
    sock = FakeSocket()
    sock.client_sends('{"type":"pong"}')
    sock.client_sends(None)  # the client goes away
    await _run(svc, sock)
    assert sock.closed is None
    assert svc.hub.connection_count() == 0


async def test_keepalive_one_task_times_every_connection(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    svc = _services(tmp_path, ping_interval_s=25.0, pong_timeout_s=60.0)
    socks = [FakeSocket() for _ in range(3)]
    start = trio.current_time()
    async with trio.open_nursery() as app:
        await app.start(svc.keepalive.run)
        async with trio.open_nursery() as conns:
            for i, (sock, session_s) in enumerate(zip(socks, (10, 40, 1000), strict=True)):
                sock.client_sends('{"type":"pong"}')
                session = Session(f"s{i}", i + 1, now_ms() + session_s * 1000)
                conn = Connection(svc, User(i + 1, f"u{i}"), session, sock)
                conns.start_soon(conn.serve, sock.accept)
        app.cancel_scope.cancel()
    assert [s.closed_after(start) for s in socks] == [
        (10, CloseCode.TOKEN_EXPIRED),
        (40, CloseCode.TOKEN_EXPIRED),
        (60, CloseCode.NO_PONG),
    ]
    assert [round(at - start) for at, kind in socks[1].events() if kind == "ping"] == [25]
    assert len(svc.keepalive) == 0
