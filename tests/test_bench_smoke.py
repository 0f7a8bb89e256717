"""The quick benchmark must keep running and keep proving nothing is lost or duplicated.

Correctness only: the figures themselves are never asserted (the machine is shared).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
