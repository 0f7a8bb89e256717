"""The quick benchmark must keep running and keep proving nothing is lost or duplicated.

Correctness only: the figures themselves are never asserted (the machine is shared).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import loadgen_report, scaleout_report
from bench.cpuwatch import delta

ROOT = Path(__file__).resolve().parent.parent
QUICK_BENCH_TIMEOUT_S = 240
SCENARIOS = {"fanout", "latency", "idle", "durable-sends", "resume-storm"}


@pytest.mark.slow
def test_bench_quick_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--out",
            str(tmp_path),
            "--json",
            str(summary_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=QUICK_BENCH_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["ok"] is True
    assert summary["failures"] == {}
    assert set(summary["scenarios"]) == SCENARIOS
    for name, runs in summary["scenarios"].items():
        assert runs, name
        for run in runs:
            assert run["lost"] == 0, (name, run)
            assert run["duplicated"] == 0, (name, run)
            assert not run.get("timed_out"), (name, run)
            assert not run.get("failed"), (name, run)
    durable = summary["scenarios"]["durable-sends"]
    assert all(run["gapless"] for run in durable)
    assert (tmp_path / "BENCHMARKS-quick.md").exists()


# ---- the outside generator's lines and the scale-out summary (pure code, no servers) ----

#: Trimmed RESULT lines as run_nochat.sh / run_matrix.sh append them (keys loadgen prints).
NOCHAT_FANOUT = {"label": "nochat", "config": "fanout", "mode": "broadcast",
                 "deliveries_per_s": 424677, "lat_p50_ms": 18.4, "lat_p99_ms": 52.9,
                 "server_cpu_pct": 84.9, "server_cpu_s": 8.51, "received": 4256000,
                 "lost": 0, "dup": 0, "undelivered": 0, "reordered": 0}  # fmt: skip
PEER_FANOUT = {"label": "go-gorilla-batch", "config": "bcast-max", "mode": "broadcast",
               "deliveries_per_s": 700000, "server_cpu_s": 7.0, "received": 7000000,
               "lost": 0}  # fmt: skip
NOCHAT_LATENCY = {"label": "nochat", "config": "latency", "mode": "broadcast",
                  "lat_p50_ms": 20.0, "lat_p99_ms": 40.0, "server_cpu_pct": 65.0,
                  "received": 1000000, "server_cpu_s": 6.5, "lost": 0, "dup": 0}  # fmt: skip
PEER_LATENCY = {"label": "go-gorilla-batch", "config": "bcast-lat", "lat_p99_ms": 41.0,
                "mode": "broadcast"}  # fmt: skip
NOCHAT_IDLE = {"label": "nochat", "config": "idle-10000", "mode": "idle",
               "rss_per_conn_kb": 29.8, "connect_s": 4.0, "join_s": 2.5, "n": 10000,
               "joined": 10000}  # fmt: skip


def test_bench_loadgen_rows_map_the_peers_configs_to_nochats() -> None:
    rows = [loadgen_report.row(x) for x in (NOCHAT_FANOUT, PEER_FANOUT, NOCHAT_IDLE)]
    assert [r["config"] for r in rows] == ["fanout", "fanout", "idle-10000"]
    assert rows[0]["cpu_us_per_delivery"] == 2.0
    assert rows[1]["cpu_us_per_delivery"] == 1.0
    assert rows[2]["connect_join_s"] == 6.5


def test_bench_loadgen_ratios_and_targets_against_the_coalescing_peer() -> None:
    lines = [NOCHAT_FANOUT, PEER_FANOUT, NOCHAT_LATENCY, PEER_LATENCY, NOCHAT_IDLE]
    rows = [loadgen_report.row(x) for x in lines]
    fanout = loadgen_report.comparison(rows)[0]
    assert fanout["vs_coalescing"] == 0.61
    assert fanout["vs_one_frame"] is None  # that peer did not run
    verdicts = {what.split()[0]: met for what, _, met in loadgen_report.targets(rows)}
    assert verdicts == {"latency": True, "fan-out": False, "idle": False, "10,000": False}
    assert loadgen_report.clean(rows)
    text = "\n".join(loadgen_report.markdown(rows))
    assert "| fan-out deliveries/s" in text and "0.61" in text


def test_bench_loadgen_a_nochat_gap_is_not_clean_and_a_peers_loss_is_not_nochats() -> None:
    peer_lost = loadgen_report.row({**PEER_FANOUT, "lost": 12})
    assert loadgen_report.clean([peer_lost])
    assert not loadgen_report.clean([loadgen_report.row({**NOCHAT_FANOUT, "undelivered": 3})])


def test_bench_loadgen_idle_memory_over_closed_sockets_is_no_figure() -> None:
    """9,023 of 10,000 idle sockets closed 4002 before joining: RSS / connection would
    read as a met target; it is no figure, and the run is not clean."""
    line = {**NOCHAT_IDLE, "rss_per_conn_kb": 14.7, "joined": 977,
            "close_codes": {"4002": 9023}}  # fmt: skip
    rows = [loadgen_report.row(line)]
    verdicts = {what.split()[0]: met for what, _, met in loadgen_report.targets(rows)}
    assert verdicts["idle"] is None and verdicts["10,000"] is None
    assert not loadgen_report.clean(rows)


def test_bench_cpuwatch_delta_reads_the_samples_inside_the_window() -> None:
    timeline = [(0.0, {"a": 1.0}), (1.0, {"a": 1.5, "b": 0.1}), (2.0, {"a": 3.0, "b": 0.4}),
                (3.0, {"a": 3.0, "b": 0.4})]  # fmt: skip
    assert delta(timeline, 0.9, 2.1) == {"a": 1.5, "b": 0.3}
    assert delta(timeline, 0.0, 3.0) == {"a": 2.0, "b": 0.4}
    assert delta([], 0.0, 1.0) == {}


def test_bench_scaleout_hop_cost_is_against_the_sqlite_worker_of_the_same_load() -> None:
    base = {"topology": "1 worker, SQLite", "config": "fanout", "cpu_s": {"nochat": 2.0},
            "received": 1_000_000, "messages": 10_000, "us_per_delivery": 2.0,
            "us_per_message": 200.0}  # fmt: skip
    two = {"topology": "2 workers, Redis + PostgreSQL", "config": "fanout",
           "cpu_s": {"nochat": 2.5, "redis": 0.1, "postgres": 0.4}, "received": 1_000_000,
           "messages": 10_000, "us_per_delivery": 3.0, "us_per_message": 300.0}  # fmt: skip
    (cost,) = scaleout_report.hop_costs([base, two])
    assert cost["extra_us_per_delivery"] == 1.0
    assert cost["extra_us_per_message"] == 100.0
    assert cost["redis_us_per_message"] == 10.0
    assert cost["postgres_us_per_message"] == 40.0
    cross = {"label": "cross-node latency", "rate": 100.0, "clients_per_node": 10,
             "messages": 100, "lost": 0, "duplicated": 0,
             "same_node": {"p50_ms": 1.0, "p99_ms": 2.0, "max_ms": 3.0},
             "cross_node": {"p50_ms": 1.5, "p99_ms": 2.5, "max_ms": 3.5}}  # fmt: skip
    text = "\n".join(scaleout_report.markdown([base, two, cross]))
    assert "| node B (through Redis) | 1.50 | 2.50 | 3.50 |" in text


def test_bench_summaries_of_two_runs_merge_into_one_report() -> None:
    from bench.__main__ import merge

    first = {"machine": {"date": "d1"}, "command": "python -m bench --scenario fanout",
             "scenarios": {"fanout": [{"lost": 0}]}, "settings": {"sizes": "a"}}  # fmt: skip
    second = {"machine": {"date": "d2"}, "command": "python -m bench --scenario loadgen",
              "scenarios": {"loadgen": [{"server": "nochat"}]}, "profiles": {"x": {}}}  # fmt: skip
    merged = merge([first, second])
    assert list(merged["scenarios"]) == ["fanout", "loadgen"]
    assert merged["machine"] == {"date": "d2"} and merged["profiles"] == {"x": {}}
    assert "at d1 (fanout)" in merged["settings"]["runs merged"]
    assert "at d2 (loadgen)" in merged["settings"]["runs merged"]
