"""Reading a process's CPU time and memory from /proc (Linux only)."""

from __future__ import annotations

import os
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One look at a process: CPU seconds (user + system, all threads) and memory in KiB."""

    cpu_s: float
    rss_kib: int
    hwm_kib: int
    #: Time its threads were runnable but waiting for a CPU (another process had the core).
    wait_s: float = 0.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid`, in seconds (/proc/<pid>/stat fields 14, 15)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        raw = f.read()
    # The command name (field 2) may contain spaces; everything after the last ')' is fixed.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of `pid` in KiB from /proc/<pid>/status."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def runqueue_wait_s(pid: int) -> float:
    """Seconds the threads of `pid` spent runnable but not running (/proc/<pid>/task/*/schedstat).

    On a shared machine this is the direct measure of interference: the process wanted the
    core and something else had it.
    """
    total_ns = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as f:
                total_ns += int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return total_ns / 1e9


def sample(pid: int) -> ProcSample:
    rss, hwm = memory_kib(pid)
    return ProcSample(cpu_seconds(pid), rss, hwm, runqueue_wait_s(pid))


def children(pid: int) -> list[int]:
    """Direct children of `pid` (/proc/<pid>/task/*/children); [] once it is gone."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                out += [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
    return out


def cpu_seconds_or_zero(pid: int) -> float:
    """`cpu_seconds`, or 0.0 for a process that has gone (a short-lived backend)."""
    try:
        return cpu_seconds(pid)
    except (OSError, ValueError):
        return 0.0
