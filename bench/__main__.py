"""`python -m bench [--quick] [--scenario NAME ...] [--json PATH] [--profile]`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import machine, report, scenarios
from .profile import Profiler, summarise
from .server import BASE_ENV, generator_cores

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes (smoke run); writes bench/results/, not docs/",
    )
    p.add_argument(
        "--scenario",
        action="append",
        choices=sorted(scenarios.SCENARIOS),
        help="run only this scenario (repeatable); default all",
    )
    p.add_argument("--json", type=Path, help="also write the machine-readable summary here")
    p.add_argument(
        "--profile",
        action="store_true",
        help="also run the headline fanout under py-spy and report the top costs",
    )
    p.add_argument("--workers", type=int, default=1, help="load-generator processes")
    p.add_argument(
        "--out",
        type=Path,
        help="where the report goes (default docs/ or bench/results/ with --quick or --scenario)",
    )
    p.add_argument(
        "--server-src",
        type=Path,
        help="run `python -m nochat` from this directory (e.g. an exported commit) "
        "instead of the working tree",
    )
    p.add_argument(
        "--render-from",
        type=Path,
        action="append",
        help="only re-render the report from summary JSONs written by earlier runs "
        "(repeatable: their scenarios are merged, a later file's win; its machine is shown)",
    )
    return p.parse_args(argv)


def merge(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' summaries as one: scenarios, profiles and failures merged (later
    ones win), the last run's machine; each run's command and date under settings."""
    out: dict[str, Any] = {"scenarios": {}, "profiles": {}, "failures": {}, "settings": {}}
    for s in summaries:
        for key in ("scenarios", "profiles", "failures"):
            out[key].update(s.get(key, {}))
        out["settings"].update(s.get("settings", {}))
        out["machine"] = s["machine"]
        out["command"] = s.get("command", "python -m bench")
    if len(summaries) > 1:
        out["settings"]["runs merged"] = "; ".join(
            f"`{s.get('command', '?')}` at {s['machine']['date']} "
            f"({', '.join(s.get('scenarios', {}))})"
            for s in summaries
        )
    return out


def rerender(paths: list[Path], out_dir: Path) -> int:
    """Rewrite BENCHMARKS.md from saved summaries (e.g. after editing bench/ANALYSIS.md)."""
    summary = merge([json.loads(path.read_text()) for path in paths])
    results = summary["scenarios"]
    pngs = report.plots(results, out_dir, "bench-")
    for key in ("fanout", "latency", "memory"):  # keep plots an older summary cannot redraw
        if key not in pngs and (out_dir / f"bench-{key}.png").exists():
            pngs[key] = f"bench-{key}.png"
    text = report.render(
        results,
        command=summary.get("command", "python -m bench"),
        machine=summary["machine"],
        settings=summary.get("settings", {}),
        quick=False,
        pngs=pngs,
        profiles=summary.get("profiles", {}),
        failures=summary.get("failures", {}),
    )
    (out_dir / "BENCHMARKS.md").write_text(text)
    print(f"wrote {out_dir / 'BENCHMARKS.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    # SIGTERM unwinds like Ctrl-C, so every `with Server(...)` still stops its server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.render_from:
        return rerender(args.render_from, args.out or DOCS)
    if args.server_src:
        os.environ["NOCHAT_BENCH_SERVER_SRC"] = str(args.server_src.resolve())
    # The orchestrator lives on the generator's core too: core 0 is the server's alone.
    os.sched_setaffinity(0, generator_cores())
    cfg = scenarios.QUICK if args.quick else scenarios.FULL
    cfg = dataclasses.replace(cfg, workers=args.workers)
    names = args.scenario or [
        n for n in scenarios.SCENARIOS if not (args.quick and n in scenarios.FULL_ONLY)
    ]
    partial = args.quick or bool(args.scenario)
    out_dir = args.out or (RESULTS if partial else DOCS)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    info = machine.describe()
    results: dict[str, list[dict[str, Any]]] = {}
    failures: dict[str, str] = {}
    t0 = time.monotonic()
    for name in names:
        print(f"== {name}", flush=True)
        try:
            results[name] = scenarios.SCENARIOS[name](cfg)
        except Exception:  # noqa: BLE001 - report the failure, carry on with the next scenario
            failures[name] = traceback.format_exc()
            print(failures[name], file=sys.stderr, flush=True)
            continue
        for run in results[name]:
            shown = {k: v for k, v in run.items() if k not in ("curve",)}
            print("   ", json.dumps(shown), flush=True)
    profiles: dict[str, dict[str, Any]] = {}
    if args.profile and Profiler.available():
        for name, fn in (
            ("fanout", scenarios.profile_fanout),
            ("durable-sends", scenarios.profile_durable),
        ):
            print(f"== profile ({name} under py-spy)", flush=True)
            raw = RESULTS / f"profile-{name}.txt"
            try:
                run = fn(cfg, raw)
                prof = summarise(raw)
                rate = run.get("deliveries_per_s") or run.get("sends_per_s")
                prof["run"] = f"{run['label']}, {rate:,}/s while sampled"
                prof["scenario"] = name
                profiles[name] = prof
            except Exception:  # noqa: BLE001 - the profile is extra: never lose the figures
                failures[f"profile {name}"] = traceback.format_exc()
                print(failures[f"profile {name}"], file=sys.stderr, flush=True)
    settings = {
        "server environment": " ".join(f"{k}={v}" for k, v in BASE_ENV.items()),
        "server source": os.environ.get("NOCHAT_BENCH_SERVER_SRC", "the working tree"),
        "durable-sends extra": "NOCHAT_SQLITE_SYNCHRONOUS=FULL",
        "sizes": ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(cfg).items() if k != "env"),
        "total bench time": f"{time.monotonic() - t0:.0f} s",
    }
    prefix = "bench-" if out_dir == DOCS else "bench-quick-" if args.quick else "bench-"
    pngs = report.plots(results, out_dir, prefix)
    text = report.render(
        results,
        command=command,
        machine=info,
        settings=settings,
        quick=args.quick,
        pngs=pngs,
        profiles=profiles,
        failures=failures,
    )
    doc = out_dir / ("BENCHMARKS.md" if not args.quick else "BENCHMARKS-quick.md")
    doc.write_text(text)
    print(f"wrote {doc}", flush=True)
    ok = not failures and all(report.correct(r) for runs in results.values() for r in runs)
    summary = {
        "ok": ok,
        "machine": info,
        "failures": failures,
        "profiles": profiles,
        "command": command,
        "settings": settings,
        "scenarios": results,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    keep = RESULTS if out_dir == DOCS else out_dir
    keep.mkdir(parents=True, exist_ok=True)
    (keep / ("summary-quick.json" if args.quick else "summary.json")).write_text(
        json.dumps(summary, indent=1)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
