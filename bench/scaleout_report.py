"""The `scaleout` scenario's rows as markdown: per topology and load, the figures and the
server-side CPU per delivery split by process group; the Redis hop's cost against one
worker on SQLite; cross-node latency. Pure functions (tested in test_bench_smoke)."""

from __future__ import annotations

from typing import Any

from .loadgen_report import _fmt

Row = dict[str, Any]
BASELINE = "1 worker, SQLite"
GROUPS = ("nochat", "redis", "postgres")


def per_delivery_us(r: Row, group: str) -> float | None:
    cpu = (r.get("cpu_s") or {}).get(group)
    received = r.get("received")
    return round(cpu * 1e6 / received, 2) if cpu is not None and received else None


def hop_costs(rows: list[Row]) -> list[Row]:
    """Per load: each topology's server-side CPU per delivery and per message, minus the
    SQLite worker's (the cost of the Redis hop, and of PostgreSQL for the durable log)."""
    base = {r["config"]: r for r in rows if r.get("topology") == BASELINE and "cpu_s" in r}
    out: list[Row] = []
    for r in rows:
        b = base.get(r.get("config", ""))
        if b is None or r is b or "cpu_s" not in r:
            continue
        out.append(
            {
                "topology": r["topology"],
                "config": r["config"],
                "extra_us_per_delivery": _diff(r.get("us_per_delivery"), b.get("us_per_delivery")),
                "extra_us_per_message": _diff(r.get("us_per_message"), b.get("us_per_message")),
                "redis_us_per_message": _per(r["cpu_s"].get("redis"), r.get("messages")),
                "postgres_us_per_message": _per(r["cpu_s"].get("postgres"), r.get("messages")),
            }
        )
    return out


def _diff(a: float | None, b: float | None) -> float | None:
    return round(a - b, 2) if a is not None and b is not None else None


def _per(cpu: float | None, n: int | None) -> float | None:
    return round(cpu * 1e6 / n, 1) if cpu is not None and n else None


def markdown(rows: list[Row]) -> list[str]:
    loads = [r for r in rows if "topology" in r]
    out = [
        "| topology | load | deliveries/s | p50 ms | p99 ms | lost | dup | undelivered "
        "| core 0 busy % | µs/delivery (all) | nochat | redis | postgres | µs/message |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in loads:
        cells = [r.get("topology"), r.get("config"), r.get("deliveries_per_s"), r.get("p50_ms"),
                 r.get("p99_ms"), r.get("lost"), r.get("dup"), r.get("undelivered"),
                 r.get("core0_busy_pct"), r.get("us_per_delivery"),
                 *(per_delivery_us(r, g) for g in GROUPS), r.get("us_per_message")]  # fmt: skip
        if r.get("error"):
            cells[2] = f"**{r['error']}**"
        out.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    costs = hop_costs(rows)
    if costs:
        out += [
            "",
            f"Cost against `{BASELINE}` in the same run (server-side CPU of every process):",
            "",
            "| topology | load | extra µs per delivery | extra µs per message "
            "| redis-server µs per message | PostgreSQL µs per message |",
            "|---|---|---|---|---|---|",
        ]
        for c in costs:
            cells = [c["topology"], c["config"], c["extra_us_per_delivery"],
                     c["extra_us_per_message"], c["redis_us_per_message"],
                     c["postgres_us_per_message"]]  # fmt: skip
            out.append("| " + " | ".join(_fmt(x) for x in cells) + " |")
    for r in rows:
        if r.get("label") == "cross-node latency":
            same, cross = r["same_node"], r["cross_node"]
            out += [
                "",
                f"Cross-node delivery latency: one sender on node A at {r['rate']:g} msg/s, "
                f"{r['clients_per_node']} receivers on each node, {r['messages']:,} messages, "
                f"lost {r['lost']}, duplicated {r['duplicated']}:",
                "",
                "| receivers | p50 ms | p99 ms | max ms |",
                "|---|---|---|---|",
                f"| node A (the sender's node) | {_fmt(same['p50_ms'])} | "
                f"{_fmt(same['p99_ms'])} | {_fmt(same['max_ms'])} |",
                f"| node B (through Redis) | {_fmt(cross['p50_ms'])} | "
                f"{_fmt(cross['p99_ms'])} | {_fmt(cross['max_ms'])} |",
            ]
    return out
