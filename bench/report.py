"""Turning results into docs/BENCHMARKS.md (or bench/results/ for --quick) and PNG plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import loadgen_report, scaleout_report

Run = dict[str, Any]

#: Hand-written findings (profiles, evidence, what to change) appended to the full report.
ANALYSIS = Path(__file__).resolve().parent / "ANALYSIS.md"


# (scenario, description, figure key, comparison, target value, unit); the figure is the
# scenario's headline run, or for "durable-sends (8 in flight)" its window-8 run.
TARGETS: list[tuple[str, str, str, str, float, str]] = [
    ("fanout", "deliveries/s, 100 clients / 10 senders", "deliveries_per_s", ">=", 350_000, "/s"),
    ("latency", "p50 at 100 msg/s, 1,000 clients", "p50_ms", "<=", 10, "ms"),
    ("latency", "p99 at 100 msg/s, 1,000 clients", "p99_ms", "<=", 25, "ms"),
    ("idle", "server memory per idle connection (10,000)", "kib_per_connection", "<=", 24, "KiB"),
    ("idle", "time to establish 10,000 connections", "connect_s", "<", 10, "s"),
    (
        "durable-sends",
        "acked sends/s, 50 senders, 1 in flight each, synchronous=FULL",
        "sends_per_s",
        ">=",
        20_000,
        "/s",
    ),
    (
        "durable-sends (8 in flight)",
        "acked sends/s, 50 senders, 8 in flight each, synchronous=FULL",
        "sends_per_s",
        ">=",
        20_000,
        "/s",
    ),
    ("resume-storm", "1,000 clients x 100 missed, all caught up", "catch_up_s", "<=", 5, "s"),
]


def headline(runs: list[Run]) -> Run | None:
    for run in runs:
        if run.get("headline"):
            return run
    return runs[0] if runs else None


def target_run(results: dict[str, list[Run]], name: str) -> Run | None:
    """The run a TARGETS row is judged on."""
    scenario, _, variant = name.partition(" (")
    runs = results.get(scenario, [])
    if variant == "8 in flight)":
        return next((r for r in runs if r.get("window") == 8 and r.get("own_rooms")), None)
    return headline(runs)


def verdict(value: float | None, op: str, target: float) -> str:
    if value is None:
        return "no figure"
    ok = {"<=": value <= target, ">=": value >= target, "<": value < target}[op]
    return "**met**" if ok else "**not met**"


def correct(run: Run) -> bool:
    if run.get("server") not in (None, "nochat"):
        return True  # a Go peer's run (loadgen scenario): its figures, not NoChat's promise
    dup = run.get("duplicated") or run.get("dup")  # loadgen's rows say "dup"
    return not run.get("lost") and not dup and not run.get("timed_out")


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    return str(value)


COLUMNS: dict[str, list[tuple[str, str]]] = {
    "fanout": [
        ("label", "run"),
        ("deliveries_per_s", "deliveries/s"),
        ("deliveries_per_server_cpu_s", "per server CPU s"),
        ("messages", "messages"),
        ("deliveries", "deliveries"),
        ("lost", "lost"),
        ("duplicated", "dup"),
        ("wall_s", "wall s"),
        ("server_cpu_s", "server CPU s"),
        ("server_cpu_util", "server core use"),
        ("server_wait_s", "server runq wait s"),
        ("server_peak_rss_mib", "server peak MiB"),
        ("generator_cpu_s", "gen CPU s"),
        ("generator_cpu_util", "gen core use"),
        ("generator_saturated", "gen saturated"),
    ],
    "latency": [
        ("label", "rate"),
        ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"),
        ("max_ms", "max ms"),
        ("deliveries", "deliveries"),
        ("lost", "lost"),
        ("duplicated", "dup"),
        ("server_cpu_util", "server core use"),
        ("server_wait_s", "server runq wait s"),
        ("server_peak_rss_mib", "server peak MiB"),
        ("generator_cpu_util", "gen core use"),
        ("generator_saturated", "gen saturated"),
    ],
    "idle": [
        ("label", "run"),
        ("users", "users"),
        ("kib_per_connection", "KiB/conn"),
        ("rss_before_mib", "RSS before MiB"),
        ("rss_after_mib", "RSS after MiB"),
        ("connect_s", "connect s"),
        ("connects_per_s", "connects/s"),
        ("server_cpu_s", "server CPU s"),
        ("server_peak_rss_mib", "server peak MiB"),
        ("generator_cpu_s", "gen CPU s"),
        ("generator_saturated", "gen saturated"),
        ("failed", "failed"),
    ],
    "durable-sends": [
        ("label", "run"),
        ("sends_per_s", "acked sends/s"),
        ("acked", "acked"),
        ("lost", "lost"),
        ("duplicated", "dup"),
        ("gapless", "seqs gapless"),
        ("server_cpu_s", "server CPU s"),
        ("server_cpu_util", "server core use"),
        ("server_wait_s", "server runq wait s"),
        ("server_peak_rss_mib", "server peak MiB"),
        ("generator_cpu_util", "gen core use"),
        ("generator_saturated", "gen saturated"),
    ],
    "resume-storm": [
        ("label", "run"),
        ("catch_up_s", "all caught up s"),
        ("deliveries", "deliveries"),
        ("lost", "lost"),
        ("duplicated", "dup"),
        ("server_cpu_s", "server CPU s"),
        ("server_peak_rss_mib", "server peak MiB"),
        ("generator_cpu_util", "gen core use"),
        ("generator_saturated", "gen saturated"),
    ],
}


def table(name: str, runs: list[Run]) -> list[str]:
    cols = COLUMNS[name]
    lines = [
        "| " + " | ".join(h for _, h in cols) + " | errors/closes |",
        "|" + "---|" * (len(cols) + 1),
    ]
    for run in runs:
        cells = [fmt(run.get(k)) for k, _ in cols] + [fmt(run.get("errors"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plots(results: dict[str, list[Run]], out: Path, prefix: str) -> dict[str, str]:
    """Write the PNGs; return {scenario: file name}. Skips quietly without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    made: dict[str, str] = {}

    def save(fig: Any, key: str) -> None:
        name = f"{prefix}{key}.png"
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        made[key] = name

    runs = results.get("fanout", [])
    if runs:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        xs = [r["clients"] for r in runs]
        ax.plot(xs, [r["deliveries_per_s"] for r in runs], "o-", label="NoChat")
        ax.axhline(350_000, color="g", ls="--", label="target 350,000/s")
        ax.axhline(175_000, color="grey", ls=":", label="best non-coalescing peer")
        ax.set_xlabel("clients in the room")
        ax.set_ylabel("deliveries/s")
        ax.set_title("Fan-out throughput (10 senders, durable)")
        ax.legend(fontsize=8)
        save(fig, "fanout")
    runs = [r for r in results.get("latency", []) if r.get("p50_ms") is not None]
    if runs:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        xs = [r["rate"] for r in runs]
        for key, style in (("p50_ms", "o-"), ("p99_ms", "s-"), ("max_ms", "^:")):
            ax.plot(xs, [r[key] for r in runs], style, label=key.replace("_ms", ""))
        ax.axhline(25, color="r", ls="--", label="p99 target 25 ms")
        ax.axhline(10, color="g", ls="--", label="p50 target 10 ms")
        ax.set_yscale("log")
        ax.set_xlabel("messages/s sent (1 sender)")
        ax.set_ylabel("latency ms")
        ax.set_title(f"Latency, {runs[0]['clients']:,} clients")
        ax.legend(fontsize=8)
        save(fig, "latency")
    runs = [r for r in results.get("idle", []) if r.get("curve")]
    if runs:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for r in runs:
            xs = [c for c, _ in r["curve"]]
            ax.plot(xs, [kib / 1024 for _, kib in r["curve"]], "o-", label=r["label"])
        base = runs[0]["curve"][0][1] / 1024
        xs = [c for c, _ in runs[0]["curve"]]
        ax.plot(xs, [base + 24 * c / 1024 for c in xs], "g--", label="24 KiB/conn budget")
        ax.set_xlabel("idle connections joined to a room")
        ax.set_ylabel("server RSS MiB")
        ax.set_title("Server memory vs connections")
        ax.legend(fontsize=8)
        save(fig, "memory")
    return made


def render(
    results: dict[str, list[Run]],
    *,
    command: str,
    machine: dict[str, Any],
    settings: dict[str, Any],
    quick: bool,
    pngs: dict[str, str],
    profiles: dict[str, dict[str, Any]],
    failures: dict[str, str],
) -> str:
    out: list[str] = ["# NoChat benchmarks", ""]
    if quick:
        out += [
            "*Quick mode: tiny sizes for a smoke run; the figures are not comparable "
            "with the targets.*",
            "",
        ]
    out += [
        "Generated by the harness in `bench/` (see its module docstrings); do not edit by hand.",
        "",
        "## How to reproduce",
        "",
        "```",
        *(
            [
                "rm -rf /tmp/nochat-src && mkdir /tmp/nochat-src && "
                "git archive HEAD nochat web | tar -x -C /tmp/nochat-src"
            ]
            if "--server-src /tmp/nochat-src" in command
            else []
        ),
        command,
        "```",
        "",
        "`--server-src` runs the server from an exported commit, so edits in the working tree",
        "cannot change it mid-run; `nox -s bench` (no `--server-src`) runs the working tree.",
        "",
        "## Machine",
        "",
        f"- nproc: {machine['nproc']}; CPU: {machine['cpu_model']}; "
        f"memory: {machine['memory_gib']} GiB",
        f"- Python {machine['python']}, Linux {machine['kernel']}",
        f"- date: {machine['date']}; load average at start: "
        + ", ".join(f"{x:.2f}" for x in machine["loadavg"]),
        "- The server runs pinned to core 0, every load-generator process to core 1 (checked "
        "at each server start). The machine is shared with other engineers' test runs, so "
        "figures are noisy: a run that overlapped other work can be several tens of percent "
        "low.",
        "- Load generator: `bench/rawws.py` clients (raw non-blocking sockets, frames parsed "
        "by hand, all of a process's sockets read by one epoll `Poller` task), each event "
        "decoded with msgspec and checked for exactly-once, in-order `seq`.",
        "",
        "## Settings",
        "",
    ]
    out += [f"- `{k}`: {v}" for k, v in settings.items()]
    out += [
        "",
        "## Targets",
        "",
        "| scenario | target | figure | verdict | nothing lost/duplicated | server core use |",
        "|---|---|---|---|---|---|",
    ]
    for name, what, key, op, target, unit in TARGETS:
        run = target_run(results, name)
        value = run.get(key) if run else None
        shown = f"{fmt(value)} {unit}" if value is not None else "-"
        ok = ("yes" if correct(run) else "**NO**") if run else "-"
        use = fmt(run.get("server_cpu_util")) if run else "-"
        out.append(
            f"| {name} | {what}: {op} {target:,} {unit} | {shown} | "
            f"{verdict(value, op, target) if not quick else 'n/a (quick)'} | {ok} | {use} |"
        )
    out += [
        "",
        "*server core use* = server CPU seconds / wall seconds of the measured phase. Below "
        "1.0 while the server is the bottleneck means another process (or the server's own "
        "SQLite thread) had core 0 part of the time: see *server runq wait s* in the tables "
        "(from /proc/<pid>/task/*/schedstat) and *per server CPU s* for the figure per "
        "second of server CPU actually used.",
        "",
    ]
    for name, runs in results.items():
        out += [f"## {name}", ""]
        out += DESCRIPTIONS.get(name, lambda: [])()
        skip = next((r["skipped"] for r in runs if r.get("skipped")), None)
        if skip:
            out += [f"Skipped: {skip}", ""]
            continue
        out += [*(SECTIONS[name](runs) if name in SECTIONS else table(name, runs)), ""]
        png = pngs.get({"fanout": "fanout", "latency": "latency", "idle": "memory"}.get(name, ""))
        if png:
            out += [f"![{name}]({png})", ""]
    for name, why in failures.items():
        out += [f"## {name}: FAILED", "", "```", why, "```", ""]
    for profile in profiles.values():
        out += profile_section(profile)
    if not quick and ANALYSIS.exists():
        out += ["", ANALYSIS.read_text().strip(), ""]
    return "\n".join(out) + "\n"


def profile_section(profile: dict[str, Any]) -> list[str]:
    out = [
        f"## Profile of the server: {profile.get('scenario', 'fanout')}",
        "",
        f"py-spy {profile.get('rate_hz', 200)} Hz over the headline run "
        f"({profile['samples']:,} samples; {profile.get('run', '')}). Shares are of the "
        "busy samples of the server process (every thread); "
        f"{profile.get('parked', 0):,} samples of trio's thread-cache threads parked between "
        "jobs (`WorkerThread._work`, a lock wait py-spy does not count as idle) are left out.",
        "",
        "Top by self time:",
        "",
        "| function | self % |",
        "|---|---|",
    ]
    out += [f"| `{n}` | {p} |" for n, p in profile["self"]]
    out += ["", "Top by inclusive time:", "", "| function | inclusive % |", "|---|---|"]
    out += [f"| `{n}` | {p} |" for n, p in profile["inclusive"]]
    notes = profile.get("notes")
    if notes:
        out += ["", notes]
    return [*out, ""]


#: Scenarios with tables of their own (ratios against peers, CPU per process group).
SECTIONS: dict[str, Callable[[list[Run]], list[str]]] = {
    "loadgen": loadgen_report.markdown,
    "scaleout": scaleout_report.markdown,
}

DESCRIPTIONS: dict[str, Callable[[], list[str]]] = {
    "fanout": lambda: [
        "Every client joins `general`; the first 10 send as fast as acks allow (a window of "
        "unacked sends each). deliveries/s = messages received by all clients / time from "
        "the first send until every client holds every message. Each client checks every "
        "`seq` arrives once and in order.",
        "",
    ],
    "latency": lambda: [
        "One sender at a fixed rate; every client measures receive time - send time "
        "(CLOCK_MONOTONIC, shared by the processes; the send time is in the text).",
        "",
    ],
    "idle": lambda: [
        "Authenticated connections (one user per 10 connections) each `join` `general`, then "
        "stay idle. KiB/conn = (server RSS after - RSS before) / connections, read once the "
        "server is quiet. The deflate run offers permessage-deflate like a browser does.",
        "",
    ],
    "durable-sends": lambda: [
        "Senders that have not joined any room send into `general` with "
        "`NOCHAT_SQLITE_SYNCHRONOUS=FULL`; acked sends/s over the send phase. The window is "
        "the unacked sends each sender allows. Acked seqs must be exactly 1..N.",
        "",
    ],
    "resume-storm": lambda: [
        "Clients join, disconnect; messages are posted over REST; every client reconnects at "
        "once with `join` `since` and must receive exactly the missed messages in order.",
        "",
    ],
    "loadgen": lambda: [
        "The outside generator (`loadgen`, Go, gorilla client; `shared/peers`) measures NoChat "
        "(`-proto nochat`: REST sign-up, bearer `/ws`, join, sends acked, every seq checked) "
        "and the two Go gorilla hubs (one frame per message, and coalescing) with the same "
        "loads, config by config in one run, through the peers' own scripts "
        "(`run_nochat.sh`, `run_matrix.sh`): server pinned to core 0, generator to core 1. "
        "Only the ratios mean anything on this shared machine. Raw JSON lines: the `raw` file "
        "named in the summary, under bench/results/.",
        "",
    ],
    "scaleout": lambda: [
        "The same loadgen loads through one worker on SQLite, one worker on Redis + "
        "PostgreSQL and `nochat serve --workers 2` on Redis + PostgreSQL (PostgreSQL durable: "
        "fsync and synchronous_commit on). Every server-side process shares core 0: the "
        "NoChat supervisor and workers, redis-server and PostgreSQL (postmaster and "
        "backends); the generator has core 1. CPU is each group's /proc utime+stime over "
        "loadgen's measured phase. Cross-node latency uses NoChat's own clients (two "
        "generator processes on core 1), two nodes on two ports sharing Redis and PostgreSQL.",
        "",
    ],
}
