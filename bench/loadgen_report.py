"""Turning loadgen's JSON lines into rows, ratios against the Go peers and markdown.

Pure functions (no I/O): tests/test_bench_smoke.py feeds them recorded lines.
"""

from __future__ import annotations

from typing import Any

from .loadgen import PEER_CONFIG

Line = dict[str, Any]
Row = dict[str, Any]

NOCHAT = "nochat"
COALESCING = "go-gorilla-batch"
ONE_FRAME = "go-gorilla"
#: NoChat's config name for each of the peers' (run_matrix.sh names the same loads apart).
CONFIG_OF = {peer: ours for ours, peer in PEER_CONFIG.items()} | {c: c for c in PEER_CONFIG}
#: The issue-11 targets, each judged in one run against the coalescing peer.
CORE_BUSY_MAX_PCT = 70.0
IDLE_KIB_MAX = 15.0
IDLE_CONNECT_MAX_S = 5.0


def row(line: Line) -> Row:
    """The figures of one run, the same keys for NoChat and the peers."""
    config = CONFIG_OF.get(str(line.get("config")), str(line.get("config")))
    received = line.get("received") or 0
    cpu = line.get("server_cpu_s")
    out: Row = {
        "server": line.get("label") or "?",
        "config": config,
        "deliveries_per_s": line.get("deliveries_per_s"),
        "p50_ms": line.get("lat_p50_ms"),
        "p99_ms": line.get("lat_p99_ms"),
        "max_ms": line.get("lat_max_ms"),
        "server_cpu_pct": line.get("server_cpu_pct"),
        "cpu_us_per_delivery": round(cpu * 1e6 / received, 2) if cpu and received else None,
        "received": received or None,
        "lost": line.get("lost"),
        "dup": line.get("dup"),
        "undelivered": line.get("undelivered"),
        "reordered": line.get("reordered"),
        "gen_cpu_pct": line.get("gen_cpu_pct"),
        "other_cpu_pct": line.get("other_cpu_pct"),
        "close_codes": line.get("close_codes") or {},
        "error": line.get("error"),
    }
    if line.get("mode") == "idle":
        connect = line.get("connect_s")
        join = line.get("join_s") or 0.0
        out.update(
            kib_per_conn=line.get("rss_per_conn_kb"),
            connected=line.get("connected"),
            joined=line.get("joined"),
            connect_s=connect,
            join_s=line.get("join_s"),
            connect_join_s=round(connect + join, 2) if connect is not None else None,
            n=line.get("n"),
        )
    return out


def latest(rows: list[Row]) -> dict[tuple[str, str], Row]:
    """(server, config) → its last row (a re-run after a noisy attempt replaces the first)."""
    return {(r["server"], r["config"]): r for r in rows}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


#: (config, key, label, better): the figures compared, and whether higher is better.
COMPARED: list[tuple[str, str, str, str]] = [
    ("fanout", "deliveries_per_s", "fan-out deliveries/s (100 clients, 10 senders, w 8)", "high"),
    ("fanout", "cpu_us_per_delivery", "fan-out server CPU µs per delivery", "low"),
    ("latency", "p50_ms", "latency p50 ms (1,000 clients, 100 msg/s)", "low"),
    ("latency", "p99_ms", "latency p99 ms", "low"),
    ("latency", "server_cpu_pct", "latency: server core busy %", "low"),
    ("latency", "cpu_us_per_delivery", "latency: server CPU µs per delivery", "low"),
    ("idle-10000", "kib_per_conn", "idle: KiB per connection (10,000)", "low"),
    ("idle-10000", "connect_join_s", "idle: connect (+ join for NoChat) s, 10,000", "low"),
]  # fmt: skip


def comparison(rows: list[Row]) -> list[Row]:
    """One row per compared figure: NoChat, both peers, NoChat / each peer."""
    by = latest(rows)
    out: list[Row] = []
    for config, key, label, better in COMPARED:
        ours = by.get((NOCHAT, config), {}).get(key)
        coal = by.get((COALESCING, config), {}).get(key)
        one = by.get((ONE_FRAME, config), {}).get(key)
        out.append(
            {
                "figure": label,
                "better": better,
                NOCHAT: ours,
                COALESCING: coal,
                ONE_FRAME: one,
                "vs_coalescing": ratio(ours, coal),
                "vs_one_frame": ratio(ours, one),
            }
        )
    return out


def targets(rows: list[Row]) -> list[tuple[str, str, bool | None]]:
    """(target, figure, met) for issue 11's targets; met is None without the figures."""
    by = latest(rows)
    lat, coal_lat = by.get((NOCHAT, "latency"), {}), by.get((COALESCING, "latency"), {})
    fan, coal_fan = by.get((NOCHAT, "fanout"), {}), by.get((COALESCING, "fanout"), {})
    idle = by.get((NOCHAT, "idle-10000"), {})
    out: list[tuple[str, str, bool | None]] = []
    p99, coal_p99, busy = lat.get("p99_ms"), coal_lat.get("p99_ms"), lat.get("server_cpu_pct")
    what = f"latency p99 <= coalescing gorilla's, server core < {CORE_BUSY_MAX_PCT:g} %"
    if p99 is not None and coal_p99 and busy is not None:
        met = p99 <= coal_p99 and busy < CORE_BUSY_MAX_PCT
        out.append((what, f"p99 {p99} ms vs {coal_p99} ms, core {busy} %", met))
    else:
        out.append((what, "-", None))
    what = "fan-out >= 1.0x coalescing gorilla, nothing lost or duplicated"
    r = ratio(fan.get("deliveries_per_s"), coal_fan.get("deliveries_per_s"))
    if r is not None:
        out.append((what, f"{r}x", r >= 1.0 and not fan.get("lost") and not fan.get("dup")))
    else:
        out.append((what, "-", None))
    kib, secs = idle.get("kib_per_conn"), idle.get("connect_join_s")
    if idle and idle.get("joined", idle.get("n")) != idle.get("n"):
        # RSS per connection over sockets the server closed is no figure at all.
        kib = secs = None
    what = f"idle <= {IDLE_KIB_MAX:g} KiB per joined connection at 10,000"
    out.append(
        (
            what,
            f"{kib} KiB" if kib is not None else "-",
            None if kib is None else kib <= IDLE_KIB_MAX,
        )
    )
    what = f"10,000 connected and joined in <= {IDLE_CONNECT_MAX_S:g} s"
    met = None if secs is None else secs <= IDLE_CONNECT_MAX_S
    out.append((what, f"{secs} s" if secs is not None else "-", met))
    return out


def clean(rows: list[Row]) -> bool:
    """NoChat lost, duplicated, reordered and left undelivered nothing in any run."""
    return all(
        not r.get("lost") and not r.get("dup") and not r.get("reordered")
        and not r.get("undelivered") and not r.get("error") and not r.get("close_codes")
        and r.get("joined", r.get("n")) == r.get("n")
        for r in rows
        if r["server"] == NOCHAT
    )  # fmt: skip


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {n}" for k, n in v.items()) or "-"
    return str(v)


RUN_COLUMNS = [
    ("server", "server"), ("config", "config"), ("deliveries_per_s", "deliveries/s"),
    ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("server_cpu_pct", "server core %"),
    ("cpu_us_per_delivery", "server µs/delivery"), ("kib_per_conn", "KiB/conn"),
    ("connect_join_s", "connect(+join) s"), ("joined", "joined"), ("lost", "lost"), ("dup", "dup"),
    ("undelivered", "undelivered"), ("gen_cpu_pct", "gen %"), ("other_cpu_pct", "others %"),
    ("close_codes", "closes"),
]  # fmt: skip


def markdown(rows: list[Row]) -> list[str]:
    """The comparison table, the targets, then every run."""
    out = [
        "| figure | NoChat | coalescing gorilla | one-frame gorilla "
        "| NoChat / coalescing | NoChat / one-frame |",
        "|---|---|---|---|---|---|",
    ]
    for c in comparison(rows):
        cells = [c[NOCHAT], c[COALESCING], c[ONE_FRAME], c["vs_coalescing"], c["vs_one_frame"]]
        out.append(f"| {c['figure']} | " + " | ".join(_fmt(x) for x in cells) + " |")
    out += ["", "| target (issue 11) | figure | verdict |", "|---|---|---|"]
    for what, shown, met in targets(rows):
        verdict = "no figure" if met is None else "**met**" if met else "**not met**"
        out.append(f"| {what} | {shown} | {verdict} |")
    out += [
        "",
        "NoChat lost, duplicated, reordered or left undelivered nothing, closed no client "
        "and joined every idle connection: "
        f"**{'yes' if clean(rows) else 'NO'}**. A peer's run that other processes disturbed "
        "(over 15 % CPU) is re-run once by `run_matrix.sh`; only the accepted one is shown.",
        "",
        "| " + " | ".join(h for _, h in RUN_COLUMNS) + " |",
        "|" + "---|" * len(RUN_COLUMNS),
    ]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(k)) for k, _ in RUN_COLUMNS) + " |")
    return out
