"""docs/CONFORMANCE.md from the Autobahn|Testsuite runs of `bench/conformance.py`."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

BEHAVIOURS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")

#: Autobahn|Testsuite's case categories (there is no 8.* or 11.*).
CATEGORIES = {
    "1": "framing",
    "2": "pings and pongs",
    "3": "reserved bits",
    "4": "opcodes",
    "5": "fragmentation",
    "6": "UTF-8 handling",
    "7": "close handling",
    "9": "limits and performance",
    "10": "miscellaneous",
    "12": "compression, payloads",
    "13": "compression, parameters",
}

_RACE = (
    "A valid message and a frame that breaks the protocol come in one write. The reader"
    " hands the message to the app and fails the connection (1002) at the bad frame at"
    " once, as RFC 6455 §7.1.7 allows; the app's echo of the message, not yet written, is"
    " refused after the close frame, so Autobahn sees no echo (strict wants it first)."
    " Stock Hypercorn has the same race (its reader also closes before the app task runs):"
    " from run to run it shows each of these cases NON-STRICT or OK; the direct reader,"
    " with no task switch between the two frames, loses it nearly always. Not a framing"
    " fault: only an app that answered before the reader reads on could make it OK, as"
    " on a socket NoChat has taken over (nochat-direct): its reader and the app are one"
    " task, so the echo goes out before the reader reads on to the bad frame."
)

#: Why a case is not OK, when the report's own reason needs a word (by case id).
EXPLAINED: dict[str, str] = dict.fromkeys(
    ["3.2", "3.3", "3.4", "4.1.3", "4.1.4", "4.1.5", "4.2.3", "4.2.4", "4.2.5", "5.15"], _RACE
) | {
    "7.1.6": "Informational only: a 256 KiB message, a close and a ping sent at once;"
    " which of them the server still answers is not specified.",
    "7.13.1": "Informational only: close code 5000, outside every range RFC 6455 defines.",
    "7.13.2": "Informational only: close code 65535, outside every range RFC 6455 defines.",
}


def _key(case: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case.split("."))


def _worst(entry: dict[str, Any]) -> str:
    """A case's behaviour: its message behaviour, or its close behaviour when that is
    worse (Autobahn reports both)."""
    behaviour, close = entry["behavior"], entry["behaviorClose"]
    if behaviour == "OK" and close in BEHAVIOURS and close != "OK":
        return str(close)
    return str(behaviour)


def _counts(run: dict[str, Any]) -> list[str]:
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    for case, entry in run["cases"].items():
        by_category[case.split(".")[0]][_worst(entry)] += 1
    rows = [
        "| category | " + " | ".join(BEHAVIOURS) + " | total |",
        "|---|" + "---:|" * (len(BEHAVIOURS) + 1),
    ]
    total: Counter[str] = Counter()
    for number in sorted(by_category, key=int):
        counts = by_category[number]
        total.update(counts)
        name = CATEGORIES.get(number, "?")
        cells = " | ".join(str(counts[b]) for b in BEHAVIOURS)
        rows.append(f"| {number}.* {name} | {cells} | {sum(counts.values())} |")
    cells = " | ".join(f"**{total[b]}**" for b in BEHAVIOURS)
    rows.append(f"| all | {cells} | **{sum(total.values())}** |")
    return rows


def _not_ok(run: dict[str, Any]) -> list[str]:
    """Every non-OK case with its reason; cases with the same behaviour and reason share
    a line."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for case in sorted(run["cases"], key=_key):
        entry = run["cases"][case]
        behaviour = _worst(entry)
        if behaviour == "OK":
            continue
        reason = entry["result"] if entry["behavior"] != "OK" else entry["resultClose"]
        if entry["behavior"] != "OK" and entry["behaviorClose"] not in ("OK", behaviour):
            reason += f" Close: {entry['resultClose']}"
        if case in EXPLAINED:
            reason += f" *Why:* {EXPLAINED[case]}"
        groups[(behaviour, reason.strip())].append(case)
    if not groups:
        return ["Every case is OK."]
    rows = ["| behaviour | cases | reason (from the report) |", "|---|---|---|"]
    for (behaviour, reason), cases in sorted(groups.items(), key=lambda g: _key(g[1][0])):
        shown = _ranges(cases)
        rows.append(f"| {behaviour} | {shown} | {reason.replace('|', '/')} |")
    return rows


def _ranges(cases: list[str]) -> str:
    """`12.1.1 … 13.7.18 (216 cases)` for a long list, every id for a short one."""
    if len(cases) <= 8:
        return ", ".join(cases)
    return f"{cases[0]} … {cases[-1]} ({len(cases)} cases)"


def _versus_stock(runs: dict[str, Any]) -> list[str]:
    stock = runs.get("hypercorn-stock")
    rows: list[str] = []
    for agent, run in runs.items():
        if agent == "hypercorn-stock":
            continue
        for case in sorted(run["cases"], key=_key):
            mine = _worst(run["cases"][case])
            if mine not in ("NON-STRICT", "FAILED"):
                continue
            theirs = _worst(stock["cases"][case]) if stock and case in stock["cases"] else "-"
            why = EXPLAINED.get(case, "")
            if why == _RACE:
                why = "the reader's close races the app's echo (explained above)"
            rows.append(f"| {agent} | {case} | {mine} | {theirs} | {why} |")
    if not rows:
        return ["No NoChat target has a NON-STRICT or FAILED case."]
    head = ["| target | case | NoChat | stock Hypercorn | why |", "|---|---|---|---|---|"]
    return head + rows


def render(
    runs: dict[str, Any], *, command: str, date: str, version: str, cases: str, note: str = ""
) -> str:
    lines = [
        "# WebSocket conformance (Autobahn|Testsuite)",
        "",
        "Generated by `bench/conformance.py`; do not edit by hand. Autobahn|Testsuite's",
        "fuzzingclient plays every case against a WebSocket echo app",
        "(`nochat/transport/echo.py`) served the way `nochat serve` serves `/ws`",
        "(`server.hypercorn_config(settings)` + `transport.install()`), and against the same",
        "app on stock Hypercorn. The RFC 6455 behaviours NoChat's transport decides itself",
        "are also ordinary tests that CI runs (tests/test_wire.py, tests/test_transport.py",
        "and the RFC 6455 tests beside them); this run is the outside check.",
        "",
        f"- Command: `{command}` (not a default session; CI does not run it)",
        f"- Date: {date}",
        f"- Autobahn: {' '.join(version.split()) or 'unknown'}",
        f"- Cases: `{cases}`",
        *([f"- Note: {note}"] if note else []),
        "",
        "A case counts under its message behaviour, or under its close behaviour when that",
        "is worse.",
        "",
    ]
    for agent, run in runs.items():
        alive = "yes" if run["alive"] else "**NO: the server stopped serving**"
        if "crash" in run:
            alive = f"**the run failed: `{run['crash']}`**"
        lines += [
            f"## {agent}",
            "",
            f"{run['about']}. Run {run.get('date', date)}: {len(run['cases'])} cases "
            f"(`{run.get('cases_run', cases)}`) in {run['elapsed_s']} s; "
            f"still serving afterwards: {alive}.",
            "",
            *_counts(run),
            "",
            "Every case that is not OK:",
            "",
            *_not_ok(run),
            "",
        ]
    lines += [
        "## NON-STRICT and FAILED cases against stock Hypercorn",
        "",
        *_versus_stock(runs),
        "",
    ]
    return "\n".join(lines)
