"""The five benchmark scenarios (targets in docs/BENCHMARKS.md). Each run starts a fresh
server and fresh workers and returns one flat dict of results (see `finish`); `SCENARIOS`
maps names to their runners."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import outside, procstat, rest, scaleout
from .pool import Pool
from .procstat import ProcSample
from .profile import Profiler
from .server import Server
from .stats import merged

PASSWORD = "bench-password-1"
ROOM = "general"
#: The generator counts as saturated above this share of its core during a measured phase.
SATURATED = 0.90
#: How long the server must stay (nearly) idle before an idle-memory reading is taken.
SETTLE_QUIET_S = 1.0
SETTLE_MAX_S = 60.0


@dataclass(frozen=True)
class Config:
    """Sizes for one mode (`quick` or full)."""

    fanout_clients: tuple[int, ...] = (10, 50, 100, 200)
    fanout_headline: int = 100
    fanout_senders: int = 10
    fanout_deliveries: int = 2_000_000
    fanout_window: int = 64
    latency_clients: int = 1000
    latency_rates: tuple[float, ...] = (25.0, 50.0, 100.0)
    latency_headline: float = 100.0
    latency_seconds: float = 5.0
    idle_connections: int = 10_000
    idle_stages: int = 10
    idle_deflate_connections: int = 2000
    conns_per_user: int = 10
    durable_senders: int = 50
    durable_sends_each: int = 1000
    durable_windows: tuple[int, ...] = (1, 8)
    resume_clients: int = 1000
    resume_messages: int = 100
    workers: int = 1
    timeout_s: float = 240.0
    env: dict[str, str] = field(default_factory=dict)


FULL = Config()
QUICK = Config(
    fanout_clients=(10,),
    fanout_headline=10,
    fanout_senders=2,
    fanout_deliveries=2000,
    latency_clients=10,
    latency_rates=(100.0,),
    latency_seconds=2.0,
    idle_connections=200,
    idle_stages=2,
    idle_deflate_connections=50,
    durable_senders=10,
    durable_sends_each=50,
    durable_windows=(1,),
    resume_clients=20,
    resume_messages=20,
    timeout_s=60.0,
)


def split(total: int, parts: int) -> list[int]:
    """`total` spread over `parts` as evenly as possible."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def user_names(prefix: str, conns: list[int], per_user: int) -> list[list[str]]:
    """Names for each worker: one user per `per_user` of its connections (at least one)."""
    return [
        [f"{prefix}{w}u{j}" for j in range(max(1, -(-c // per_user)))] for w, c in enumerate(conns)
    ]


def check(replies: list[dict[str, Any]], what: str) -> None:
    for r in replies:
        if r.get("timed_out"):
            raise RuntimeError(f"{what}: a worker timed out")


def settle(srv: Server) -> ProcSample:
    """Wait until the server has used < 5 % CPU for SETTLE_QUIET_S (bounded); sample it."""
    deadline = time.monotonic() + SETTLE_MAX_S
    last = srv.sample()
    while time.monotonic() < deadline:
        time.sleep(SETTLE_QUIET_S)
        now = srv.sample()
        if now.cpu_s - last.cpu_s < 0.05 * SETTLE_QUIET_S:
            return now
        last = now
    return last


@dataclass
class Phase:
    """Server and generator CPU over one measured phase."""

    srv: Server
    pool: Pool
    before: ProcSample | None = None
    after: ProcSample | None = None
    t0: float = 0.0
    wall_s: float = 0.0
    gen_wait0: float = 0.0
    gen_wait1: float = 0.0

    def __enter__(self) -> Phase:
        self.gen_wait0 = sum(procstat.runqueue_wait_s(pid) for pid in self.pool.pids)
        self.before = self.srv.sample()
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.monotonic() - self.t0
        self.after = self.srv.sample()
        self.gen_wait1 = sum(procstat.runqueue_wait_s(pid) for pid in self.pool.pids)

    def figures(self, gen_cpu_s: float) -> dict[str, Any]:
        assert self.before is not None and self.after is not None
        cpu = self.after.cpu_s - self.before.cpu_s
        wall = max(self.wall_s, 1e-9)
        return {
            "wall_s": round(self.wall_s, 3),
            "server_cpu_s": round(cpu, 2),
            "server_cpu_util": round(cpu / wall, 2),
            "server_wait_s": round(self.after.wait_s - self.before.wait_s, 2),
            "server_peak_rss_mib": round(self.after.hwm_kib / 1024, 1),
            "server_rss_mib": round(self.after.rss_kib / 1024, 1),
            "generator_cpu_s": round(gen_cpu_s, 2),
            "generator_cpu_util": round(gen_cpu_s / wall, 2),
            "generator_wait_s": round(self.gen_wait1 - self.gen_wait0, 2),
            "generator_saturated": gen_cpu_s / wall > SATURATED,
        }


def setup_members(
    pool: Pool, conns: list[int], per_user: int, prefix: str, cfg: Config, **connect: Any
) -> None:
    names = user_names(prefix, conns, per_user)
    check(
        pool.all(
            "users", [{"names": n, "password": PASSWORD} for n in names], timeout=cfg.timeout_s
        ),
        "register",
    )
    connect.setdefault("room", ROOM)
    replies = pool.all("connect", [{"count": c} for c in conns], timeout=cfg.timeout_s, **connect)
    check(replies, "connect")
    failed = {k: v for r in replies for k, v in r["failed"].items()}
    if failed:
        raise RuntimeError(f"connect failed: {failed}")


def gather(pool: Pool, **args: Any) -> dict[str, Any]:
    """Every worker's counters, summed."""
    replies = pool.all("stats", **args)
    out: dict[str, Any] = {"errors": {}}
    for key in (
        "members",
        "joined",
        "received",
        "duplicates",
        "gap_seqs",
        "reconnects",
        "failed",
        "acked",
        "poller_wakes",
        "poller_reads",
    ):
        out[key] = sum(r[key] for r in replies)
    for r in replies:
        for k, v in r["errors"].items():
            out["errors"][k] = out["errors"].get(k, 0) + v
    out["latency"] = merged(r["latency"] for r in replies)
    out["last_seqs"] = sorted({s for r in replies for s in r["last_seqs"]})
    if args.get("seqs"):
        out["ack_seqs"] = [s for r in replies for s in r["ack_seqs"]]
        out["ack_unique"] = sum(r["ack_unique"] for r in replies)
        out["ack_gapless_each"] = all(r["ack_gapless_each"] for r in replies)
    return out


# ---- fanout and latency ---------------------------------------------------------------------


def broadcast(
    cfg: Config,
    clients: int,
    senders: int,
    per_sender: int,
    *,
    window: int,
    rate: float | None,
    per_user: int,
    label: str,
    profile: Path | None = None,
) -> dict[str, Any]:
    """`clients` members in one room; the first `senders` of them send `per_sender` each."""
    env = dict(cfg.env)
    with Server(env) as srv, Pool(cfg.workers, srv.port) as pool:
        conns = split(clients, cfg.workers)
        setup_members(pool, conns, per_user, "b", cfg, concurrency=100, latency=rate is not None)
        before = gather(pool)
        head = max(before["last_seqs"] or [0])
        pool.all("reset")
        total = senders * per_sender
        target = head + total
        with Phase(srv, pool) as phase, Profiler(srv.pid, profile) if profile else nullcontext():
            replies = pool.all(
                "load",
                [{"senders": s} for s in split(senders, cfg.workers)],
                count=per_sender,
                window=window,
                rate=rate,
                pad=40,
                target_seq=target,
                timeout=cfg.timeout_s,
            )
        timed_out = any(r["timed_out"] for r in replies)
        got = gather(pool)
        expected = total * got["joined"]
        gen_cpu = sum(r.get("cpu_s", 0.0) for r in replies)
        wall = max(r.get("done_s", r["elapsed_s"]) for r in replies)
        phase.wall_s = wall
        result = {
            "label": label,
            "clients": clients,
            "senders": senders,
            "per_sender": per_sender,
            "window": window,
            "rate": rate,
            "messages": total,
            "acked": got["acked"],
            "deliveries": got["received"],
            "expected_deliveries": expected,
            "deliveries_per_s": round(got["received"] / wall) if wall else 0,
            "lost": max(0, expected - got["received"]) + got["gap_seqs"],
            "duplicated": got["duplicates"],
            "reconnects": got["reconnects"],
            "errors": got["errors"],
            "timed_out": timed_out,
            **got["latency"].summary(),
            **phase.figures(gen_cpu),
        }
        # How many sockets the generator read per wake-up: near 1 means it paid a scheduler
        # pass per frame (cheap per frame only when the server's writes arrive in bunches).
        result["generator_reads_per_wake"] = round(
            got["poller_reads"] / max(1, got["poller_wakes"]), 1
        )
        cpu = result["server_cpu_s"]
        result["deliveries_per_server_cpu_s"] = round(got["received"] / cpu) if cpu else 0
        return result


def fanout(cfg: Config) -> list[dict[str, Any]]:
    runs = []
    for clients in cfg.fanout_clients:
        senders = min(cfg.fanout_senders, clients)
        per_sender = max(50, min(5000, cfg.fanout_deliveries // (clients * senders)))
        runs.append(
            broadcast(
                cfg,
                clients,
                senders,
                per_sender,
                window=cfg.fanout_window,
                rate=None,
                per_user=1,
                label=f"{clients} clients",
            )
        )
        runs[-1]["headline"] = clients == cfg.fanout_headline
    return runs


def latency(cfg: Config) -> list[dict[str, Any]]:
    runs = []
    for rate in cfg.latency_rates:
        count = int(rate * cfg.latency_seconds)
        runs.append(
            broadcast(
                cfg,
                cfg.latency_clients,
                1,
                count,
                window=10_000,
                rate=rate,
                per_user=cfg.conns_per_user,
                label=f"{rate:g} msg/s",
            )
        )
        runs[-1]["headline"] = rate == cfg.latency_headline
    return runs


# ---- idle connections -----------------------------------------------------------------------


def idle_run(
    cfg: Config, total: int, stages: int, *, deflate: bool, env: dict[str, str] | None = None
) -> dict[str, Any]:
    env = {**cfg.env, **(env or {})}
    with Server(env) as srv, Pool(cfg.workers, srv.port) as pool:
        conns = split(total, cfg.workers)
        names = user_names("i", conns, cfg.conns_per_user)
        check(
            pool.all(
                "users", [{"names": n, "password": PASSWORD} for n in names], timeout=cfg.timeout_s
            ),
            "register",
        )
        base = settle(srv)
        curve = [(0, base.rss_kib)]
        connect_s = 0.0
        gen_cpu0 = sum(r["cpu_s"] for r in pool.all("stats"))
        cpu0 = srv.sample().cpu_s
        done = 0
        for stage in split(total, stages):
            t0 = time.monotonic()
            replies = pool.all(
                "connect",
                [{"count": c} for c in split(stage, cfg.workers)],
                room=ROOM,
                concurrency=200,
                deflate=deflate,
                timeout=cfg.timeout_s,
            )
            connect_s += time.monotonic() - t0
            check(replies, "connect")
            failed = {k: v for r in replies for k, v in r["failed"].items()}
            if failed:
                raise RuntimeError(f"idle connect failed after {done}: {failed}")
            done += stage
            curve.append((done, settle(srv).rss_kib))
        after = srv.sample()
        got = gather(pool)
        gen_cpu = sum(r["cpu_s"] for r in pool.all("stats")) - gen_cpu0
        per_conn_kib = (after.rss_kib - base.rss_kib) / total
        return {
            "label": f"{total} connections" + (", deflate offered" if deflate else ""),
            "connections": total,
            "deflate": deflate,
            "users": sum(len(n) for n in names),
            "connect_s": round(connect_s, 2),
            "connects_per_s": round(total / connect_s) if connect_s else 0,
            "rss_before_mib": round(base.rss_kib / 1024, 1),
            "rss_after_mib": round(after.rss_kib / 1024, 1),
            "kib_per_connection": round(per_conn_kib, 1),
            "server_cpu_s": round(after.cpu_s - cpu0, 2),
            "server_peak_rss_mib": round(after.hwm_kib / 1024, 1),
            "generator_cpu_s": round(gen_cpu, 2),
            "generator_cpu_util": round(gen_cpu / connect_s, 2) if connect_s else 0,
            "generator_saturated": connect_s > 0 and gen_cpu / connect_s > SATURATED,
            "curve": curve,
            "lost": 0,
            "duplicated": got["duplicates"],
            "failed": got["failed"],
            "reconnects": got["reconnects"],
            "errors": got["errors"],
        }


def idle(cfg: Config) -> list[dict[str, Any]]:
    plain = idle_run(cfg, cfg.idle_connections, cfg.idle_stages, deflate=False)
    plain["headline"] = True
    # What a browser does: offer permessage-deflate. Once with the server's default
    # (compression off: the offer is refused), once with NOCHAT_WEBSOCKET_COMPRESSION=on.
    refused = idle_run(cfg, cfg.idle_deflate_connections, 1, deflate=True)
    refused["label"] += ", compression off (default)"
    accepted = idle_run(
        cfg,
        cfg.idle_deflate_connections,
        1,
        deflate=True,
        env={"NOCHAT_WEBSOCKET_COMPRESSION": "true"},
    )
    accepted["label"] += ", NOCHAT_WEBSOCKET_COMPRESSION=true"
    return [plain, refused, accepted]


# ---- durable sends --------------------------------------------------------------------------


def durable_run(
    cfg: Config, window: int, *, own_rooms: bool, profile: Path | None = None
) -> dict[str, Any]:
    """`durable_senders` senders, each `window` unacked sends at most, FULL sync.

    own_rooms: each sender joins its own room and sends there (the store's throughput,
    no fan-out). Otherwise every sender sends into `general` without joining it (what a
    bot does; the server looks the room up per send).
    """
    env = {**cfg.env, "NOCHAT_SQLITE_SYNCHRONOUS": "FULL"}
    senders = cfg.durable_senders
    with Server(env) as srv, Pool(cfg.workers, srv.port) as pool:
        conns = split(senders, cfg.workers)
        if own_rooms:
            setup_members(pool, conns, 1, "d", cfg, concurrency=100, own_room=True, room="d")
        else:
            setup_members(pool, conns, 1, "d", cfg, concurrency=100, join=False)
        pool.all("reset")
        total = senders * cfg.durable_sends_each
        with Phase(srv, pool) as phase, Profiler(srv.pid, profile) if profile else nullcontext():
            replies = pool.all(
                "load",
                [{"senders": s} for s in conns],
                count=cfg.durable_sends_each,
                window=window,
                rate=None,
                pad=40,
                target_seq=None,
                timeout=cfg.timeout_s,
            )
        got = gather(pool, seqs=True)
        wall = max(r.get("send_s", r["elapsed_s"]) for r in replies)
        phase.wall_s = wall
        seqs = got["ack_seqs"]
        if own_rooms:
            unique = got["ack_unique"]
            gapless = got["ack_gapless_each"]
        else:
            unique = len(set(seqs))
            gapless = sorted(set(seqs)) == list(range(1, unique + 1))
        where = "own rooms, joined" if own_rooms else "general, not joined"
        return {
            "label": f"{senders} senders, window {window}, {where}",
            "senders": senders,
            "window": window,
            "own_rooms": own_rooms,
            "messages": total,
            "acked": len(seqs),
            "sends_per_s": round(len(seqs) / wall) if wall else 0,
            "lost": total - unique,
            "duplicated": len(seqs) - unique,
            "gapless": gapless,
            "errors": got["errors"],
            "reconnects": got["reconnects"],
            "timed_out": any(r["timed_out"] for r in replies),
            **phase.figures(sum(r.get("cpu_s", 0.0) for r in replies)),
        }


def profile_durable(cfg: Config, path: Path) -> dict[str, Any]:
    """The headline durable-sends run again, with py-spy recording the server throughout."""
    return durable_run(cfg, cfg.durable_windows[0], own_rooms=True, profile=path)


def durable_sends(cfg: Config) -> list[dict[str, Any]]:
    runs = [durable_run(cfg, w, own_rooms=True) for w in cfg.durable_windows]
    runs[0]["headline"] = True
    runs.append(durable_run(cfg, cfg.durable_windows[0], own_rooms=False))
    return runs


# ---- resume storm ---------------------------------------------------------------------------


def resume_storm(cfg: Config) -> list[dict[str, Any]]:
    clients, missed = cfg.resume_clients, cfg.resume_messages
    with Server(dict(cfg.env)) as srv, Pool(cfg.workers, srv.port) as pool:
        conns = split(clients, cfg.workers)
        setup_members(pool, conns, cfg.conns_per_user, "r", cfg, concurrency=100)
        check(pool.all("disconnect", timeout=cfg.timeout_s), "disconnect")
        token = rest.register_and_login(srv.port, "stormsender", PASSWORD)
        head = 0
        for i in range(missed):
            status, body = rest.call(
                srv.port,
                "POST",
                f"/api/rooms/{ROOM}/messages",
                {"text": f"missed {i}", "client_id": f"storm-{i}"},
                token,
            )
            if status != 200:
                raise RuntimeError(f"REST send -> {status} {body}")
            head = max(head, int(body["seq"]))
        pool.all("reset")
        with Phase(srv, pool) as phase:
            replies = pool.all(
                "reconnect", target_seq=head, concurrency=clients, timeout=cfg.timeout_s
            )
        got = gather(pool)
        wall = max(r.get("done_s", r["elapsed_s"]) for r in replies)
        phase.wall_s = wall
        expected = clients * missed
        return [
            {
                "label": f"{clients} clients x {missed} missed",
                "clients": clients,
                "missed": missed,
                "catch_up_s": round(wall, 3),
                "deliveries": got["received"],
                "expected_deliveries": expected,
                "deliveries_per_s": round(got["received"] / wall) if wall else 0,
                "lost": max(0, expected - got["received"]) + got["gap_seqs"],
                "duplicated": got["duplicates"],
                "reconnects": got["reconnects"],
                "errors": got["errors"],
                "timed_out": any(r["timed_out"] for r in replies),
                "headline": True,
                **phase.figures(sum(r.get("cpu_s", 0.0) for r in replies)),
            }
        ]


def profile_fanout(cfg: Config, path: Path) -> dict[str, Any]:
    """The headline fanout run again, with py-spy recording the server throughout."""
    clients = cfg.fanout_headline
    senders = min(cfg.fanout_senders, clients)
    per_sender = max(50, min(5000, cfg.fanout_deliveries // (clients * senders)))
    return broadcast(
        cfg,
        clients,
        senders,
        per_sender,
        window=cfg.fanout_window,
        rate=None,
        per_user=1,
        label=f"{clients} clients (profiled)",
        profile=path,
    )


SCENARIOS: dict[str, Callable[[Config], list[dict[str, Any]]]] = {
    "fanout": fanout,
    "latency": latency,
    "idle": idle,
    "durable-sends": durable_sends,
    "resume-storm": resume_storm,
    # The outside generator (shared/peers' loadgen) against NoChat and the Go peers, and
    # scale-out on Redis + PostgreSQL: skipped with the reason when Go, redis-server or
    # PostgreSQL are missing. Their sizes are the peers' scripts', so --quick leaves them out.
    "loadgen": lambda cfg: outside.run(env=cfg.env),
    "scaleout": lambda cfg: scaleout.run(),
}
FULL_ONLY = frozenset({"loadgen", "scaleout"})
