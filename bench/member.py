"""One simulated chat client: a WebSocket connection that joins a room, reads and checks every
event, optionally sends, and resumes with `since` after a close the protocol says to retry.

Bookkeeping per member is what the exactly-once check needs: the highest in-order `seq`,
how many messages arrived, how many were duplicates (seq already seen) and how many
seqs were skipped (a gap: lost unless a later resume delivers them, which would then
count as out of order).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter
from typing import Final

import trio
import wsproto
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection
from wsproto.extensions import PerMessageDeflate

from . import wire
from .stats import Histogram

#: Close codes after which a protocol-abiding client reconnects (docs/PROTOCOL.md).
RECONNECT_CODES: Final = frozenset({1001, 1006, 1011, 1012, 4002, 4008, 4029})
#: A member gives up after this many reconnects in one run: the harness must stop by itself.
MAX_RECONNECTS: Final = 5
RECEIVE_BUFFER_BYTES: Final = 256 * 1024
MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
#: Longest wait for a handshake plus the `joined` reply.
CONNECT_TIMEOUT_S: Final = 30.0


async def open_connection(
    nursery: trio.Nursery, port: int, token: str, *, deflate: bool
) -> WebSocketConnection:
    """Connect to ws://127.0.0.1:port/ws with a bearer token, as `connect_websocket` does,
    but optionally offering permessage-deflate (what every browser offers)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    conn = WebSocketConnection(
        stream,
        wsproto.WSConnection(wsproto.ConnectionType.CLIENT),
        host=f"127.0.0.1:{port}",
        path="/ws",
        client_subprotocols=[wire.SUBPROTOCOL],
        client_extra_headers=[(b"authorization", f"Bearer {token}".encode())],
        message_queue_size=4,
        max_message_size=MAX_MESSAGE_BYTES,
        receive_buffer_size=RECEIVE_BUFFER_BYTES,
    )
    if deflate:
        request = conn._initial_request
        assert request is not None
        conn._initial_request = dataclasses.replace(request, extensions=[PerMessageDeflate()])
    nursery.start_soon(conn._reader_task)
    await conn._open_handshake.wait()
    return conn


class Member:
    """A client; `run` keeps it connected until `close()` or a fatal close code."""

    def __init__(
        self,
        name: str,
        port: int,
        token: str,
        room: str,
        *,
        join: bool = True,
        deflate: bool = False,
        latency: Histogram | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.token = token
        self.room = room
        self.join = join
        self.deflate = deflate
        self.latency = latency
        # Ordering bookkeeping.
        self.last_seq: int | None = None
        self.received = 0
        self.duplicates = 0
        self.gap_seqs = 0
        self.reconnects = 0
        self.errors: Counter[str] = Counter()
        self.target_seq: int | None = None
        self.caught_up = trio.Event()
        self.joined = trio.Event()
        self.failed: str | None = None
        # Sending bookkeeping (only used when this member sends).
        self.pending: dict[str, str] = {}
        self.window: trio.Semaphore | None = None
        self.acked = 0
        self.ack_seqs: list[int] = []
        self.all_acked = trio.Event()
        self.expect_acks = 0
        self._ws: WebSocketConnection | None = None
        self._connected = trio.Event()
        self._closing = False
        self._cancel = trio.CancelScope()

    # ---- lifetime -------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, join, read; reconnect on retryable closes; return on close() or fatal error."""
        with self._cancel:
            while not self._closing:
                try:
                    outcome = await self._one_connection()
                finally:
                    self._ws = None
                    self._connected = trio.Event()
                if self.closing:
                    break
                retry = isinstance(outcome, int) and outcome in RECONNECT_CODES
                if retry and self.reconnects < MAX_RECONNECTS:
                    self.reconnects += 1
                    self.errors[f"close_{outcome}"] += 1
                    continue
                self._fail(outcome if isinstance(outcome, str) else f"close_{outcome}")
                break

    @property
    def closing(self) -> bool:
        return self._closing

    def _fail(self, why: str) -> None:
        self.failed = why
        self.errors[why] += 1
        self.joined.set()  # unblock whoever waits; `failed` says why
        self.caught_up.set()
        self.all_acked.set()

    async def _one_connection(self) -> int | str:
        """One connection's life; returns its close code, or a string naming what failed.

        Failures are caught inside the nursery so they never arrive wrapped in a group.
        """
        outcome: int | str = "closed"
        async with trio.open_nursery() as nursery:
            try:
                with trio.fail_after(CONNECT_TIMEOUT_S):
                    ws = await open_connection(nursery, self.port, self.token, deflate=self.deflate)
                self._ws = ws
                if self.join:
                    await ws.send_message(wire.join(self.room, since=self.last_seq))
                else:
                    await ws.send_message(wire.PONG)  # a first frame, as the server expects
                    self.joined.set()
                self._connected.set()
                if self.pending:  # resend unacked sends with the same client_id
                    for client_id, text in list(self.pending.items()):
                        await ws.send_message(wire.send(self.room, text, client_id))
                await self._read_loop(ws)
            except ConnectionClosed as exc:
                outcome = exc.reason.code if exc.reason else 1006
            except HandshakeError as exc:
                outcome = f"handshake_{type(exc).__name__}"
            except trio.TooSlowError:
                outcome = "connect_timeout"
            except OSError as exc:
                outcome = f"oserror_{exc.errno}"
            except Exception as exc:  # noqa: BLE001 - one client's bug must not stop the run
                print(f"{self.name}: {exc!r}", file=sys.stderr)
                outcome = f"exception_{type(exc).__name__}"
            finally:
                nursery.cancel_scope.cancel()
        return outcome

    async def close(self) -> None:
        """Close with 1000 and make `run` return."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            with trio.move_on_after(5):
                await ws.aclose(1000)
        self._cancel.cancel()

    def reset_for_reconnect(self) -> None:
        """Prepare a closed member for another `run` (keeps last_seq so the join resumes)."""
        self._closing = False
        self._cancel = trio.CancelScope()
        self.joined = trio.Event()
        self.caught_up = trio.Event()
        self.failed = None

    # ---- receiving ------------------------------------------------------------------------

    def expect(self, target_seq: int) -> None:
        """Set `caught_up` once every seq up to `target_seq` has arrived."""
        self.target_seq = target_seq
        if self.last_seq is not None and self.last_seq >= target_seq:
            self.caught_up.set()

    async def _read_loop(self, ws: WebSocketConnection) -> None:
        while True:
            frame = await ws.get_message()
            now_ns = time.monotonic_ns()
            latency = self.latency  # re-read: the worker swaps histograms between phases
            for ev in wire.decode(frame):
                kind = ev.type
                if kind == "message":
                    seq = ev.seq
                    last = self.last_seq
                    if last is None or seq == last + 1:
                        self.last_seq = seq
                        self.received += 1
                    elif seq <= last:
                        self.duplicates += 1
                        continue
                    else:
                        self.gap_seqs += seq - last - 1
                        self.last_seq = seq
                        self.received += 1
                    if latency is not None and ev.text[:1] == "t":
                        sent_ns = int(ev.text[1 : ev.text.index(" ")])
                        latency.add((now_ns - sent_ns) // 1000)
                elif kind == "ack":
                    self._on_ack(ev.client_id, ev.seq)
                elif kind == "joined":
                    if self.last_seq is None:
                        self.last_seq = ev.head_seq
                    self.joined.set()
                elif kind == "ping":
                    await ws.send_message(wire.PONG)
                elif kind == "error":
                    self.errors[f"error_{ev.code}"] += 1
                    if ev.code != "rate_limited":
                        self._release_one()
                elif kind == "reset":
                    self.errors["reset"] += 1
            if self.target_seq is not None and (self.last_seq or 0) >= self.target_seq:
                self.caught_up.set()

    # ---- sending --------------------------------------------------------------------------

    def _on_ack(self, client_id: str, seq: int) -> None:
        if self.pending.pop(client_id, None) is None:
            self.errors["unexpected_ack"] += 1
            return
        self.acked += 1
        self.ack_seqs.append(seq)
        if self.window is not None:
            self.window.release()
        if self.acked >= self.expect_acks:
            self.all_acked.set()

    def _release_one(self) -> None:
        # An error reply to a send frees its window slot; the send itself is abandoned.
        if self.window is not None and self.pending:
            self.pending.pop(next(iter(self.pending)))
            self.window.release()
            self.expect_acks -= 1
            if self.acked >= self.expect_acks:
                self.all_acked.set()

    async def send_many(
        self, count: int, *, window: int, rate: float | None, pad: int, tag: str
    ) -> None:
        """Send `count` messages: up to `window` unacked at a time, or at `rate` per second.

        Returns once every send is acked (or the member failed). Every text starts with
        "t<monotonic ns> " so receivers can measure latency.
        """
        self.window = trio.Semaphore(window)
        self.expect_acks = count
        self.all_acked = trio.Event()
        padding = "x" * pad
        start = trio.current_time()
        for i in range(count):
            if self.failed:
                return
            await self.window.acquire()
            if rate is not None:
                await trio.sleep_until(start + i / rate)
            client_id = f"{tag}-{i}"
            text = f"t{time.monotonic_ns()} {padding}"
            self.pending[client_id] = text
            ws = self._ws
            if ws is None:
                await self._connected.wait()
                continue  # the reconnect resends everything pending
            try:
                await ws.send_message(wire.send(self.room, text, client_id))
            except ConnectionClosed:
                continue  # resent after the reconnect
        await self.all_acked.wait()
