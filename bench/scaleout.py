"""The `scaleout` scenario (issue 10 §6): what Redis and PostgreSQL cost per message.

1. The outside generator's fan-out and latency loads (`loadgen`, the same flags as the
   `loadgen` scenario) against one worker on SQLite, one worker on Redis + PostgreSQL, and
   `nochat serve --workers 2` on Redis + PostgreSQL, in that order, in one run. CPU is read
   from /proc for every server-side process (the NoChat processes, redis-server, the
   PostgreSQL cluster) over loadgen's measured phase (cpuwatch).
2. Cross-node delivery latency: two `nochat serve` nodes on two ports sharing Redis and
   PostgreSQL; NoChat's own clients (bench.worker) — a sender and receivers on node A,
   receivers on node B — so the same messages are timed to both nodes' clients.

Cores: every server-side process (NoChat, redis-server, PostgreSQL) on core 0, the
generators on core 1; the services are started by the bench on free ports in temporary
directories and stopped at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import loadgen
from .cpuwatch import CpuWatch
from .outside import results_file, skipped
from .pool import Pool
from .server import ROOT, Server
from .services import Postgres, Redis, ServiceUnavailable
from .stats import merged

CONFIGS = ("fanout", "latency")
PASSWORD = "bench-password-1"
ROOM = "general"


@dataclass(frozen=True)
class Topology:
    label: str
    #: loadgen's -label (the JSON lines' "label"): no spaces.
    slug: str
    workers: int
    redis: bool


TOPOLOGIES = (
    Topology("1 worker, SQLite", "nochat-1w-sqlite", 1, redis=False),
    Topology("1 worker, Redis + PostgreSQL", "nochat-1w-redis-pg", 1, redis=True),
    Topology("2 workers, Redis + PostgreSQL", "nochat-2w-redis-pg", 2, redis=True),
)
#: Cross-node run: receivers per node, messages/s from the one sender on node A, seconds.
CROSS_CLIENTS = 200
CROSS_RATE = 100.0
CROSS_SECONDS = 10.0
CROSS_TIMEOUT_S = 120.0


Groups = dict[str, Callable[[], list[int]]]


def start_services(stack: ExitStack) -> tuple[dict[str, str], Groups]:
    """Redis and PostgreSQL (stopped when `stack` closes): the server env naming them,
    and their pid lookups for cpuwatch."""
    redis = stack.enter_context(Redis())
    pg = stack.enter_context(Postgres())
    env = {"NOCHAT_REDIS_URL": redis.url, "NOCHAT_DATABASE_URL": pg.url}
    return env, {"redis": lambda: [redis.pid], "postgres": pg.pids}


def figures(
    line: dict[str, Any], cpu: dict[str, float], topo: Topology, config: str
) -> dict[str, Any]:
    received = line.get("received") or 0
    sent = line.get("acked") or 0
    wall = line.get("measured_wall_s") or 0.0
    total = sum(cpu.values())
    out: dict[str, Any] = {
        "label": f"{topo.label}: {config}",
        "server": "nochat",
        "topology": topo.label,
        "config": config,
        "deliveries_per_s": line.get("deliveries_per_s"),
        "p50_ms": line.get("lat_p50_ms"),
        "p99_ms": line.get("lat_p99_ms"),
        "messages": sent,
        "received": received,
        "lost": line.get("lost"),
        "dup": line.get("dup"),
        "undelivered": line.get("undelivered"),
        "reordered": line.get("reordered"),
        "close_codes": line.get("close_codes") or {},
        "measured_s": wall,
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
        "server_side_cpu_s": round(total, 2),
        "core0_busy_pct": round(100 * total / wall, 1) if wall else None,
        "us_per_delivery": round(total * 1e6 / received, 2) if received else None,
        "us_per_message": round(total * 1e6 / sent, 1) if sent else None,
        "loadgen_server_cpu_s": line.get("server_cpu_s"),
        "other_cpu_pct": line.get("other_cpu_pct"),
    }
    return out


def through_loadgen(built: Path, out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for topo in TOPOLOGIES:
        with ExitStack() as stack:
            env, groups = start_services(stack) if topo.redis else ({}, {})
            args = ["--workers", str(topo.workers)] if topo.workers > 1 else []
            srv = stack.enter_context(Server(env, args=args))
            groups = {"nochat": srv.pids, **groups}
            for config in CONFIGS:
                with CpuWatch(groups) as watch:
                    line, ended = loadgen.run_nochat(
                        built, srv.port, srv.pid, config, out, topo.slug
                    )
                if line is None or not ended:
                    rows.append(
                        {
                            "label": f"{topo.label}: {config}",
                            "server": "nochat",
                            "topology": topo.label,
                            "config": config,
                            "error": "no result",
                        }
                    )
                    continue
                cpu = watch.between(ended - float(line.get("measured_wall_s") or 0.0), ended)
                rows.append(figures(line, cpu, topo, config))
    return rows  # fmt: skip


def cross_node() -> dict[str, Any]:
    """Sender on node A; the same messages timed at A's and at B's receivers."""
    with ExitStack() as stack:
        env, _ = start_services(stack)
        a = stack.enter_context(Server(env))
        b = stack.enter_context(Server(env))
        pool = stack.enter_context(Pool(2, [a.port, b.port]))
        names = [[f"xa{i}" for i in range(20)], [f"xb{i}" for i in range(20)]]
        pool.all("users", [{"names": n} for n in names], password=PASSWORD, timeout=CROSS_TIMEOUT_S)
        conns = pool.all("connect", [{"count": CROSS_CLIENTS}] * 2, room=ROOM, concurrency=100,
                         latency=True, timeout=CROSS_TIMEOUT_S)  # fmt: skip
        failed = {k: v for r in conns for k, v in r.get("failed", {}).items()}
        if failed or any(r["timed_out"] for r in conns):
            raise RuntimeError(f"cross-node connect failed: {failed}")
        head = max(s for r in pool.all("stats") for s in r["last_seqs"] or [0])
        pool.all("reset")
        count = int(CROSS_RATE * CROSS_SECONDS)
        t0 = time.monotonic()
        replies = pool.all("load", [{"senders": 1}, {"senders": 0}], count=count, window=10_000,
                           rate=CROSS_RATE, pad=40, target_seq=head + count,
                           timeout=CROSS_TIMEOUT_S)  # fmt: skip
        wall = time.monotonic() - t0
        stats = pool.all("stats")
        same, other = merged([stats[0]["latency"]]), merged([stats[1]["latency"]])
        return {
            "label": "cross-node latency",
            "server": "nochat",
            "clients_per_node": CROSS_CLIENTS,
            "rate": CROSS_RATE,
            "messages": count,
            "same_node": same.summary(),
            "cross_node": other.summary(),
            "received": sum(s["received"] for s in stats),
            "expected": 2 * CROSS_CLIENTS * count,
            "lost": sum(s["gap_seqs"] for s in stats)
            + max(0, 2 * CROSS_CLIENTS * count - sum(s["received"] for s in stats)),
            "duplicated": sum(s["duplicates"] for s in stats),
            "timed_out": any(r["timed_out"] for r in replies),
            "wall_s": round(wall, 2),
            "errors": {k: v for s in stats for k, v in s["errors"].items()},
        }


def run() -> list[dict[str, Any]]:
    try:
        built = loadgen.build()
    except loadgen.PeersUnavailable as e:
        return skipped(str(e))
    out = results_file("scaleout")
    try:
        rows = through_loadgen(built, out)
        rows.append(cross_node())
    except ServiceUnavailable as e:
        return skipped(str(e))
    for r in rows:
        r["raw"] = str(out.relative_to(ROOT))
    return rows
