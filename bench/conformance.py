"""`python -m bench.conformance --wstest PATH`: Autobahn|Testsuite's fuzzingclient against
the echo app (nochat/transport/echo.py) on NoChat's transport, and on stock Hypercorn;
writes docs/CONFORMANCE.md. `nox -s conformance` installs wstest and runs this.

Four targets, one after another, each its own Hypercorn on a free 127.0.0.1 port:
`nochat-direct` (deflate refused: sockets taken over from Hypercorn, NoChat's reader and
the direct writer, as `/ws` by default), `nochat-hooked` (the same with
NOCHAT_SOCKET_TAKEOVER=false: the direct reader and writer under Hypercorn, the path TLS
sockets take), `nochat-deflate` (NOCHAT_WEBSOCKET_COMPRESSION=true: wsproto reads, the
direct writer writes) and `hypercorn-stock` (a plain Hypercorn Config, no NoChat hooks).
After each run the server must still answer HTTP: a connection's failure must never end
the process.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import trio
from hypercorn.trio import serve as hypercorn_serve

from nochat import transport
from nochat.transport.echo import EchoApp, echo_config

from . import conformance_report

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
#: One target's cases: ~2 min without deflate, ~20-40 min with it (12.*, 13.* send 1000
#: messages of up to 256 KiB each) on a busy 2-core machine; more means a hang.
TARGET_TIMEOUT_S = 3600.0
START_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True)
class Target:
    agent: str
    compression: bool
    stock: bool
    about: str
    takeover: bool = True


TARGETS = (
    Target(
        "nochat-direct",
        compression=False,
        stock=False,
        about="NoChat's config (deflate refused): sockets taken over after the handshake,"
        " NoChat's reader and the direct writer, as `/ws`",
    ),
    Target(
        "nochat-hooked",
        compression=False,
        stock=False,
        takeover=False,
        about="NOCHAT_SOCKET_TAKEOVER=false (deflate refused): the direct reader and writer"
        " under Hypercorn, the path TLS sockets take",
    ),
    Target(
        "nochat-deflate",
        compression=True,
        stock=False,
        about="NOCHAT_WEBSOCKET_COMPRESSION=true: wsproto reads where deflate is negotiated"
        " (12.*, 13.*), the direct writer always writes",
    ),
    Target(
        "hypercorn-stock",
        compression=True,
        stock=True,
        about="A plain Hypercorn Config, no NoChat hooks, ASGI sends (for comparison)",
    ),
)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.conformance", description=__doc__)
    p.add_argument("--wstest", required=True, help="Autobahn|Testsuite's wstest (Python 2.7)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "CONFORMANCE.md")
    p.add_argument("--cases", default="*", help="case patterns, e.g. 6.4.*,7.* (default: all)")
    p.add_argument("--target", action="append", choices=[t.agent for t in TARGETS])
    p.add_argument("--command", default="nox -s conformance", help="recorded in the report")
    p.add_argument("--note", default="", help="a sentence for the report (what was not run)")
    p.add_argument("--save", type=Path, help="also keep each target's results, DIR/AGENT.json")
    p.add_argument(
        "--load",
        type=Path,
        action="append",
        default=[],
        help="a target's results saved by --save, reported instead of running it (repeatable)",
    )
    return p.parse_args(argv)


async def run_target(target: Target, wstest: str, cases: str, work: Path) -> dict[str, Any]:
    """Serve the echo app for `target`, fuzz it, check it still serves; the run's results."""
    transport.install()
    config = echo_config(
        HOST, 0, compression=target.compression, stock=target.stock, takeover=target.takeover
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        with trio.fail_after(START_TIMEOUT_S):
            binds = await nursery.start(
                partial(hypercorn_serve, EchoApp(), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
            )
        port = int(binds[0].rsplit(":", 1)[1])
        outdir = work / target.agent
        spec = {
            "outdir": str(outdir),
            "servers": [{"agent": target.agent, "url": f"ws://{HOST}:{port}/"}],
            "cases": cases.split(","),
            "exclude-cases": [],
            "exclude-agent-cases": {},
        }
        spec_path = work / f"{target.agent}.json"
        spec_path.write_text(json.dumps(spec))
        log_path = work / f"{target.agent}.log"
        started = time.monotonic()
        with log_path.open("wb") as log, trio.fail_after(TARGET_TIMEOUT_S):
            await trio.run_process(
                [wstest, "-m", "fuzzingclient", "-s", str(spec_path)],
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        elapsed = time.monotonic() - started
        with trio.fail_after(START_TIMEOUT_S):
            alive = await _answers_http(port)
        stop.set()
    index = json.loads((outdir / "index.json").read_text())[target.agent]
    results = {}
    for case, entry in index.items():
        detail = json.loads((outdir / entry["reportfile"]).read_text())
        results[case] = {
            "behavior": entry["behavior"],
            "behaviorClose": entry["behaviorClose"],
            "remoteCloseCode": entry.get("remoteCloseCode"),
            "result": detail.get("result", ""),
            "resultClose": detail.get("resultClose", ""),
        }
    return {"elapsed_s": round(elapsed, 1), "alive": alive, "cases": results}


async def _answers_http(port: int) -> bool:
    """Whether the server still answers a plain HTTP request (the echo app says 404)."""
    stream = await trio.open_tcp_stream(HOST, port)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return (await stream.receive_some(64)).startswith(b"HTTP/1.1 404")


def _leaf(exc: BaseException) -> str:
    """The first exception inside (nested) exception groups, as `Type: message`."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def main(argv: list[str]) -> int:
    args = parse(argv)
    targets = [t for t in TARGETS if not args.target or t.agent in args.target]
    runs: dict[str, Any] = {}
    for path in args.load:
        run = json.loads(path.read_text())
        runs[run["agent"]] = run
    with tempfile.TemporaryDirectory(prefix="nochat-conformance-") as tmp:
        for target in targets:
            if target.agent in runs:
                continue
            print(f"conformance: {target.agent} ({target.about})", flush=True)
            try:
                run = trio.run(run_target, target, args.wstest, args.cases, Path(tmp))
            except Exception as exc:  # noqa: BLE001  the server died: say so, go on
                run = {"elapsed_s": 0, "alive": False, "cases": {}, "crash": _leaf(exc)}
            run.update(agent=target.agent, about=target.about, cases_run=args.cases)
            run["date"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
            runs[target.agent] = run
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"{target.agent}.json").write_text(json.dumps(run))
            counts = Counter(c["behavior"] for c in run["cases"].values())
            print(f"  {dict(counts)} in {run['elapsed_s']} s, alive: {run['alive']}", flush=True)
    version = subprocess.run(
        [args.wstest, "--autobahnversion"], capture_output=True, text=True, check=False
    ).stdout.strip()
    runs = {t.agent: runs[t.agent] for t in TARGETS if t.agent in runs}
    text = conformance_report.render(
        runs,
        command=args.command,
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=version,
        cases=args.cases,
        note=args.note,
    )
    args.out.write_text(text)
    print(f"wrote {args.out}")
    bad = [
        agent
        for agent, run in runs.items()
        if agent.startswith("nochat")
        and (not run["alive"] or any(c["behavior"] == "FAILED" for c in run["cases"].values()))
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
