"""The `loadgen` scenario: NoChat and the two Go gorilla hubs measured by the outside
generator in one run, config by config (NoChat, then both peers), so each ratio compares
figures taken minutes apart on the same machine.

NoChat gets a fresh server per config (as each peer does), with the bench settings
(rate limits lifted, durability on: SQLite synchronous=FULL). Raw JSON lines go to
bench/results/loadgen-<UTC time>.jsonl.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from . import loadgen
from .loadgen_report import row
from .server import ROOT, Server

RESULTS = ROOT / "bench" / "results"
CONFIGS = ("fanout", "latency", "idle-10000")


def results_file(prefix: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%MZ")
    return RESULTS / f"{prefix}-{stamp}.jsonl"


def skipped(reason: str) -> list[dict[str, Any]]:
    print(f"    skipped: {reason}", flush=True)
    return [{"label": "skipped", "server": "skipped", "skipped": reason}]


def run(
    configs: tuple[str, ...] = CONFIGS, env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    try:
        built = loadgen.build()
    except loadgen.PeersUnavailable as e:
        return skipped(str(e))
    out = results_file("loadgen")
    lines: list[dict[str, Any]] = []
    for config in configs:
        with Server(env) as srv:
            line, _ = loadgen.run_nochat(built, srv.port, srv.pid, config, out, "nochat")
        if line is not None:
            lines.append(line)
        lines += loadgen.run_peers(built, config, out)
    # run_matrix.sh re-runs a peer's run that others disturbed; keep the accepted one.
    rows = [row(line) for line in lines if line.get("accepted", True)]
    for r in rows:
        r["raw"] = str(out.relative_to(ROOT))
    return rows
