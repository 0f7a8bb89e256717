"""py-spy around a measured phase, and a summary of its collapsed stacks (top costs)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

SAMPLE_RATE_HZ = 200


class Profiler:
    """`with Profiler(pid, path):` records `pid` with py-spy (raw collapsed stacks) meanwhile."""

    def __init__(self, pid: int, path: Path) -> None:
        self.pid = pid
        self.path = path
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def program() -> str | None:
        """py-spy on PATH, or beside this interpreter (a venv that is not activated)."""
        beside = Path(sys.executable).parent / "py-spy"
        return shutil.which("py-spy") or (str(beside) if beside.exists() else None)

    @classmethod
    def available(cls) -> bool:
        return cls.program() is not None

    def __enter__(self) -> Profiler:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.program() or "py-spy",
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(SAMPLE_RATE_HZ),
                "--format",
                "raw",
                "--output",
                str(self.path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _short(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"; keep function + file tail.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    parts = Path(path).parts
    tail = "/".join(parts[-2:]) if parts else path
    return f"{name} ({tail})"


#: Frames every sample passes through (interpreter start-up, the event loop, thread entry):
#: listing them as "inclusive" costs says nothing.
_BOILERPLATE = (
    "<module>",
    "_run_code",
    "_run_module_as_main",
    "main",
    "run",
    "unrolled_run",
    "Thread._bootstrap",
    "Thread._bootstrap_inner",
    "Thread.run",
)


#: The leaf of a trio thread-cache thread parked between jobs (in `_worker_lock.acquire`):
#: py-spy does not see that wait as idle, and counting it would make an idle thread the
#: server's "top cost".
_PARKED = "WorkerThread._work (_core/_thread_cache.py)"


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    """Top functions by self time and by inclusive time, as shares of the busy samples."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = parked = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            _short(f)
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames:
            continue
        if frames[-1] == _PARKED:
            parked += count
            continue
        total += count
        self_time[frames[-1]] += count
        for f in set(frames):
            if f.split(" (")[0] not in _BOILERPLATE:
                inclusive[f] += count

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100.0 * n / total, 1)) for name, n in c.most_common(top)]

    return {
        "samples": total,
        "parked": parked,
        "self": share(self_time) if total else [],
        "inclusive": share(inclusive) if total else [],
    }
