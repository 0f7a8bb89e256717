"""docs/CONFORMANCE.md is rendered from Autobahn's results: counts per category and
behaviour, every non-OK case with its reason, NoChat's non-strict cases beside stock's."""

from __future__ import annotations

from typing import Any

from bench.conformance_report import render


def _case(behavior: str, close: str = "OK", result: str = "", result_close: str = "") -> Any:
    return {
        "behavior": behavior,
        "behaviorClose": close,
        "remoteCloseCode": 1000,
        "result": result,
        "resultClose": result_close,
    }


def _run(cases: dict[str, Any]) -> dict[str, Any]:
    return {"about": "a target", "elapsed_s": 1.0, "alive": True, "cases": cases}


def test_conformance_report_counts_and_lists_every_non_ok_case() -> None:
    nochat = _run(
        {
            "1.1.1": _case("OK"),
            "3.2": _case("NON-STRICT", result="Actual events match at least one expected."),
            "6.4.3": _case("FAILED", result="Did not fail fast."),
            "7.1.6": _case("OK", "INFORMATIONAL", result_close="Undefined close."),
            "12.1.1": _case("UNIMPLEMENTED", "UNIMPLEMENTED", result="No deflate."),
        }
    )
    stock = _run({"3.2": _case("OK"), "6.4.3": _case("OK")})
    text = render(
        {"nochat-direct": nochat, "hypercorn-stock": stock},
        command="nox -s conformance",
        date="today",
        version="Autobahn 0.10.9",
        cases="*",
    )
    assert "| 1.* framing | 1 | 0 | 0 | 0 | 0 | 1 |" in text
    assert "| 7.* close handling | 0 | 0 | 1 | 0 | 0 | 1 |" in text  # the close counts
    assert "| all | **1** | **1** | **1** | **1** | **1** | **5** |" in text
    assert "| FAILED | 6.4.3 | Did not fail fast. |" in text
    assert "| INFORMATIONAL | 7.1.6 | Undefined close." in text
    assert "| nochat-direct | 3.2 | NON-STRICT | OK |" in text
    assert "| nochat-direct | 6.4.3 | FAILED | OK |" in text
