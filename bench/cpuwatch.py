"""CPU seconds of groups of processes, sampled every 100 ms on a thread, so a phase whose
start and end are only known afterwards (an outside generator's measured phase) can be
cut out of the timeline: `with CpuWatch({"nochat": srv.pids}) as w: … w.between(t0, t1)`.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Mapping
from typing import Self

from .procstat import cpu_seconds_or_zero

SAMPLE_EVERY_S = 0.1

Sample = tuple[float, dict[str, float]]


def delta(timeline: list[Sample], t0: float, t1: float) -> dict[str, float]:
    """CPU seconds each group used between monotonic times t0 and t1, read from the
    samples nearest inside the window (per group; never negative: a process that
    exited meanwhile takes its CPU with it)."""
    if not timeline:
        return {}
    times = [t for t, _ in timeline]
    i = min(bisect.bisect_left(times, t0), len(timeline) - 1)
    j = max(bisect.bisect_right(times, t1) - 1, i)
    first, last = timeline[i][1], timeline[j][1]
    return {g: round(max(0.0, last.get(g, 0.0) - first.get(g, 0.0)), 3) for g in last}


class CpuWatch:
    """Samples `groups` ({name: () -> pids}) until the `with` block ends."""

    def __init__(self, groups: Mapping[str, Callable[[], list[int]]]) -> None:
        self.groups = dict(groups)
        self.timeline: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpuwatch", daemon=True)
        #: CPU seconds of each group's pids at their last look, so a group's sum never
        #: drops when one of its processes exits (its last reading is kept).
        self._last: dict[str, dict[int, float]] = {name: {} for name in self.groups}

    def _look(self) -> Sample:
        now = time.monotonic()
        for name, pids in self.groups.items():
            seen = self._last[name]
            for pid in pids():
                seen[pid] = max(cpu_seconds_or_zero(pid), seen.get(pid, 0.0))
        return now, {name: sum(seen.values()) for name, seen in self._last.items()}

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.timeline.append(self._look())

    def __enter__(self) -> Self:
        self.timeline.append(self._look())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.timeline.append(self._look())

    def between(self, t0: float, t1: float) -> dict[str, float]:
        return delta(self.timeline, t0, t1)
