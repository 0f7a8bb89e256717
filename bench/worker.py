"""A load-generator process: holds many `Member`s and obeys JSON commands, one per stdin line.

Run by the orchestrator as `python -m bench.worker`; each command gets exactly one JSON
reply line on stdout. Every command is bounded by its `timeout` (seconds) and reports
`timed_out` instead of hanging.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections import Counter
from functools import partial
from typing import Any

import trio

from . import rest
from .member import Member
from .rawws import Poller
from .stats import Histogram

#: Concurrent REST calls while registering users (set-up only, never measured).
REST_CONCURRENCY = 8


def raise_nofile_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_self_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Worker:
    def __init__(self, wid: int, port: int, nursery: trio.Nursery, poller: Poller) -> None:
        self.wid = wid
        self.poller = poller
        self.port = port
        self.nursery = nursery
        self.tokens: list[str] = []
        self.members: list[Member] = []
        self.latency = Histogram()

    async def users(self, names: list[str], password: str) -> dict[str, Any]:
        limiter = trio.CapacityLimiter(REST_CONCURRENCY)
        tokens: dict[str, str] = {}

        async def one(name: str) -> None:
            tokens[name] = await trio.to_thread.run_sync(
                rest.register_and_login, self.port, name, password, limiter=limiter
            )

        async with trio.open_nursery() as nursery:
            for name in names:
                nursery.start_soon(one, name)
        self.tokens = [tokens[n] for n in names]
        return {"users": len(self.tokens)}

    async def connect(
        self,
        count: int,
        room: str,
        concurrency: int,
        join: bool = True,
        deflate: bool = False,
        latency: bool = False,
        own_room: bool = False,
    ) -> dict[str, Any]:
        """Open `count` more members; with `own_room`, each first creates and then uses its
        own public room `<room><worker>x<index>` (traffic without fan-out to others)."""
        limiter = trio.Semaphore(concurrency)
        new: list[Member] = []
        hist = self.latency if latency else None
        first = len(self.members)
        for i in range(first, first + count):
            token = self.tokens[i % len(self.tokens)]
            name = f"{room}{self.wid}x{i}" if own_room else room
            m = Member(
                f"w{self.wid}m{i}",
                self.port,
                token,
                name,
                join=join,
                deflate=deflate,
                latency=hist,
                poller=self.poller,
            )
            new.append(m)
        self.members.extend(new)
        if own_room:
            rest_limit = trio.CapacityLimiter(REST_CONCURRENCY)
            async with trio.open_nursery() as nursery:
                for m in new:
                    nursery.start_soon(
                        partial(trio.to_thread.run_sync, limiter=rest_limit),
                        rest.create_room,
                        self.port,
                        m.room,
                        m.token,
                    )

        async def start(m: Member) -> None:
            async with limiter:
                self.nursery.start_soon(m.run)
                await m.joined.wait()

        async with trio.open_nursery() as nursery:
            for m in new:
                nursery.start_soon(start, m)
        failed = Counter(m.failed for m in new if m.failed)
        return {"connected": count - sum(failed.values()), "failed": dict(failed)}

    async def load(
        self,
        senders: int,
        count: int,
        window: int,
        rate: float | None,
        pad: int,
        target_seq: int | None,
    ) -> dict[str, Any]:
        """Run `senders` members' sends (the first ones here) and wait for every member
        to reach `target_seq` (when given). Replies with the times of both."""
        t0 = time.monotonic()
        cpu0 = cpu_self_s()
        if target_seq is not None:
            for m in self.members:
                if m.join:
                    m.expect(target_seq)
        send_done = 0.0

        async def sender(m: Member, k: int) -> None:
            await m.send_many(count, window=window, rate=rate, pad=pad, tag=f"w{self.wid}s{k}")

        async with trio.open_nursery() as nursery:
            for k, m in enumerate(self.members[:senders]):
                nursery.start_soon(sender, m, k)
        send_done = time.monotonic() - t0
        if target_seq is not None:
            for m in self.members:
                if m.join:
                    await m.caught_up.wait()
        return {
            "send_s": send_done,
            "done_s": time.monotonic() - t0,
            "cpu_s": cpu_self_s() - cpu0,
            "acked": sum(m.acked for m in self.members[:senders]),
        }

    async def disconnect(self) -> dict[str, Any]:
        async with trio.open_nursery() as nursery:
            for m in self.members:
                nursery.start_soon(m.close)
        return {"closed": len(self.members)}

    async def reconnect(self, target_seq: int, concurrency: int) -> dict[str, Any]:
        """All members reconnect at once (join with since = last seq) and catch up."""
        t0 = time.monotonic()
        cpu0 = cpu_self_s()
        for m in self.members:
            m.reset_for_reconnect()
            m.expect(target_seq)
        limiter = trio.Semaphore(concurrency)

        async def start(m: Member) -> None:
            async with limiter:
                self.nursery.start_soon(m.run)
                await m.joined.wait()

        async with trio.open_nursery() as nursery:
            for m in self.members:
                nursery.start_soon(start, m)
        for m in self.members:
            await m.caught_up.wait()
        return {"done_s": time.monotonic() - t0, "cpu_s": cpu_self_s() - cpu0}

    def stats(self, seqs: bool = False) -> dict[str, Any]:
        errors: Counter[str] = Counter()
        for m in self.members:
            errors.update(m.errors)
        out: dict[str, Any] = {
            "members": len(self.members),
            "joined": sum(1 for m in self.members if m.join),
            "received": sum(m.received for m in self.members),
            "duplicates": sum(m.duplicates for m in self.members),
            "gap_seqs": sum(m.gap_seqs for m in self.members),
            "reconnects": sum(m.reconnects for m in self.members),
            "failed": sum(1 for m in self.members if m.failed),
            "last_seqs": sorted({m.last_seq or 0 for m in self.members if m.join}),
            "acked": sum(m.acked for m in self.members),
            "errors": dict(errors),
            "latency": self.latency.to_json(),
            "cpu_s": cpu_self_s(),
            "poller_wakes": self.poller.wakes,
            "poller_reads": self.poller.reads,
        }
        if seqs:
            out["ack_seqs"] = [s for m in self.members for s in m.ack_seqs]
            senders = [m for m in self.members if m.ack_seqs]
            out["ack_unique"] = sum(len(set(m.ack_seqs)) for m in senders)
            out["ack_gapless_each"] = all(
                sorted(set(m.ack_seqs)) == list(range(1, len(set(m.ack_seqs)) + 1)) for m in senders
            )
        return out

    def reset_counts(self) -> None:
        for m in self.members:
            m.received = m.duplicates = m.gap_seqs = 0
            m.errors.clear()
            m.ack_seqs.clear()
            m.acked = 0
        self.latency = Histogram()
        self.poller.wakes = self.poller.reads = 0
        for m in self.members:
            if m.latency is not None:
                m.latency = self.latency


async def serve(wid: int, port: int) -> None:
    async with trio.open_nursery() as nursery:
        poller = Poller()
        await nursery.start(poller.run)
        worker = Worker(wid, port, nursery, poller)
        while True:
            line = await trio.to_thread.run_sync(sys.stdin.readline)
            if not line:
                break
            cmd = json.loads(line)
            name = cmd.pop("cmd")
            timeout = cmd.pop("timeout", 120.0)
            if name == "quit":
                break
            reply: dict[str, Any] = {"timed_out": True}
            t0 = time.monotonic()
            with trio.move_on_after(timeout):
                if name == "stats":
                    reply = worker.stats(**cmd)
                elif name == "reset":
                    worker.reset_counts()
                    reply = {}
                else:
                    reply = await getattr(worker, name)(**cmd)
            reply.setdefault("elapsed_s", time.monotonic() - t0)
            reply.setdefault("timed_out", False)
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
        nursery.cancel_scope.cancel()


def main() -> None:
    raise_nofile_limit()
    wid, port = int(sys.argv[1]), int(sys.argv[2])
    trio.run(serve, wid, port)


if __name__ == "__main__":
    main()
