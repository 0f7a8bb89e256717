"""One simulated chat client: a WebSocket connection that joins a room, checks every event it
receives (read for it by the worker's `Poller`), optionally sends, and resumes with `since`
after a close the protocol says to retry.

Bookkeeping per member is what the exactly-once check needs: the highest in-order `seq`,
how many messages arrived, how many were duplicates (seq already seen) and how many
seqs were skipped (a gap: lost unless a later resume delivers them, which would then
count as out of order).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Final

import trio

from . import wire
from .rawws import ConnectionClosed, HandshakeError, Poller, RawWebSocket
from .stats import Histogram

#: Close codes after which a protocol-abiding client reconnects (docs/PROTOCOL.md).
RECONNECT_CODES: Final = frozenset({1001, 1006, 1011, 1012, 4002, 4008, 4029})
#: A member gives up after this many reconnects in one run: the harness must stop by itself.
MAX_RECONNECTS: Final = 5
#: Longest wait for a handshake plus the `joined` reply.
CONNECT_TIMEOUT_S: Final = 30.0


async def open_connection(port: int, token: str, *, deflate: bool) -> RawWebSocket:
    """Connect to ws://127.0.0.1:port/ws with a bearer token, optionally offering
    permessage-deflate (what every browser offers)."""
    return await RawWebSocket.connect(port, token, subprotocol=wire.SUBPROTOCOL, deflate=deflate)


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
        poller: Poller,
    ) -> None:
        self.name = name
        self.port = port
        self.token = token
        self.room = room
        self.join = join
        self.deflate = deflate
        self.latency = latency
        self.poller = poller
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
        self._ws: RawWebSocket | None = None
        self._connected = trio.Event()
        self._closed = trio.Event()  # set when the current connection has ended
        self._closing = False
        self._cancel = trio.CancelScope()
        self._ended = trio.Event()  # set by the poller when the connection ends
        self._outcome: int | Exception | None = None

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
        """One connection's life; returns its close code, or a string naming what failed."""
        outcome: int | str = "closed"
        ws: RawWebSocket | None = None
        self._closed = trio.Event()
        try:
            with trio.fail_after(CONNECT_TIMEOUT_S):
                ws = await open_connection(self.port, self.token, deflate=self.deflate)
            self._ws = ws
            if self.join:
                await ws.send_text(wire.join(self.room, since=self.last_seq))
            else:
                await ws.send_text(wire.PONG)  # a first frame, as the server expects
                self.joined.set()
            self._connected.set()
            if self.pending:  # resend unacked sends with the same client_id
                for client_id, text in list(self.pending.items()):
                    await ws.send_text(wire.send(self.room, text, client_id))
            await self._read_loop(ws)
        except ConnectionClosed as exc:
            outcome = exc.code
        except HandshakeError as exc:
            outcome = f"handshake_{exc.status}"
        except trio.TooSlowError:
            outcome = "connect_timeout"
        except OSError as exc:
            outcome = f"oserror_{exc.errno}"
        except Exception as exc:  # noqa: BLE001 - one client's bug must not stop the run
            print(f"{self.name}: {exc!r}", file=sys.stderr)
            outcome = f"exception_{type(exc).__name__}"
        finally:
            if ws is not None:
                ws.close_socket()
            self._closed.set()
        return outcome

    async def close(self) -> None:
        """Close with 1000 and make `run` return."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            with trio.move_on_after(5):
                # The read loop sees the server's close frame and ends the connection.
                await ws.send_close(1000)
                await self._closed.wait()
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

    async def _read_loop(self, ws: RawWebSocket) -> None:
        """Hand the socket to the poller until it reports the connection's end."""
        self._outcome = None
        self._ended = trio.Event()
        try:
            self.poller.add(ws, self)
            await self._ended.wait()
        finally:
            self.poller.remove(ws)
        if isinstance(self._outcome, Exception):
            raise self._outcome
        raise ConnectionClosed(self._outcome if self._outcome is not None else 1006)

    def on_closed(self, code: int) -> None:
        self._outcome = code
        self._ended.set()

    def on_failed(self, exc: Exception) -> None:
        self._outcome = exc
        self._ended.set()

    def on_messages(self, ws: RawWebSocket, payloads: list[bytes]) -> None:
        """Check and count one batch of messages (called by the poller)."""
        now_ns = time.monotonic_ns()
        latency = self.latency  # re-read: the worker swaps histograms between phases
        for ev in wire.decode_all(payloads):
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
                ws.send_text_nowait(wire.PONG)
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
                await ws.send_text(wire.send(self.room, text, client_id))
            except ConnectionClosed:
                continue  # resent after the reconnect
        await self.all_acked.wait()
