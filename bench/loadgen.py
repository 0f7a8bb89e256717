"""The outside load generator and its Go peers (`shared/peers`): find them, build them with
their own `build.sh`, run their own scripts, return their JSON lines.

Where the peers are: `$NOCHAT_PEERS` (the folder holding `build.sh`), by default
`../shared/peers` beside the checkout. Where they are built: `build.sh`'s own
`$NOCHAT_PEERS_DIR` (default /tmp/nochat-peers). Nothing here depends on a fixed path.

The scripts pin every server to core 0 and the generator to core 1, send only to
127.0.0.1, bound every run (`-duration` plus `timeout`) and append one JSON line per run
to `OUT`; `run_matrix.sh` starts and stops the peers itself, `run_nochat.sh` measures a
NoChat server the caller started.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from .server import ROOT, free_port

PEERS_ENV = "NOCHAT_PEERS"
BUILD_TIMEOUT_S = 600
#: The scripts' own config names: NoChat's (run_nochat.sh) → the peers' (run_matrix.sh),
#: the same loadgen flags apart from the protocol.
PEER_CONFIG = {"fanout": "bcast-max", "latency": "bcast-lat", "idle-10000": "idle-10000"}
PEERS = ("go-gorilla-batch", "go-gorilla")
#: A script's runs are bounded by its own timeouts; this is the backstop per config
#: (the peers' script may wait for a quiet machine and re-run a noisy run once).
SCRIPT_TIMEOUT_S = {"idle-10000": 900, "latency": 600, "fanout": 480}
#: Bench users for NoChat's runs: 10,000 idle connections on 10 users would be 1,000
#: each, the bench server's per-user cap (NOCHAT_MAX_CONNECTIONS_PER_USER).
USERS = {"idle-10000": 20}


class PeersUnavailable(RuntimeError):
    """The peers' folder is missing or would not build: the scenario is skipped."""


def source() -> Path:
    return Path(os.environ.get(PEERS_ENV) or ROOT.parent / "shared" / "peers").resolve()


def build() -> Path:
    """Build loadgen and both peers with the folder's build.sh; the built folder."""
    script = source() / "build.sh"
    if not script.is_file():
        raise PeersUnavailable(f"no {script} (set {PEERS_ENV} to the shared peers folder)")
    try:
        done = subprocess.run(
            ["bash", str(script)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise PeersUnavailable(f"{script} took over {BUILD_TIMEOUT_S} s") from e
    built = Path(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None
    if done.returncode != 0 or built is None or not (built / "loadgen" / "loadgen").exists():
        raise PeersUnavailable(f"{script} failed ({done.returncode}): {done.stderr[-800:]}")
    return built


def _new_lines(out: Path, before: int) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    lines = out.read_text().splitlines()[before:]
    return [json.loads(line) for line in lines if line.strip()]


def _count(out: Path) -> int:
    return len(out.read_text().splitlines()) if out.exists() else 0


def run_peers(built: Path, config: str, out: Path) -> list[dict[str, Any]]:
    """Both Go peers through `config` (NoChat's name), one run each; their JSON lines."""
    before = _count(out)
    env = {
        **os.environ,
        "RUNS": "1",
        "SERVERS": " ".join(PEERS),
        "CONFIGS": PEER_CONFIG[config],
        "OUT": str(out),
        "PORT": str(free_port()),
    }
    subprocess.run(
        ["bash", str(built / "run_matrix.sh")],
        env=env,
        timeout=SCRIPT_TIMEOUT_S[config] * len(PEERS),
        check=False,
    )
    return _new_lines(out, before)


def run_nochat(
    built: Path, port: int, pid: int, config: str, out: Path, label: str
) -> tuple[dict[str, Any] | None, float]:
    """One run of `config` against the NoChat on `port` (`pid` is measured by loadgen).

    Returns its JSON line (None if the run gave none) and the monotonic time its line
    was printed, which is when loadgen's measured phase ended (to cut other processes'
    CPU out of a timeline: see cpuwatch)."""
    before = _count(out)
    env = {
        **os.environ,
        "RUNS": "1",
        "CONFIGS": config,
        "OUT": str(out),
        "LABEL": label,
        "USERS": str(USERS.get(config, 10)),
    }
    ended = 0.0
    with subprocess.Popen(
        ["bash", str(built / "run_nochat.sh"), str(port), str(pid)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        deadline = time.monotonic() + SCRIPT_TIMEOUT_S[config]
        for line in proc.stdout:
            print("   ", line.rstrip()[:300], flush=True)
            if line.startswith(f"{config} run "):
                ended = time.monotonic()
            if time.monotonic() > deadline:
                proc.kill()
        proc.wait(SCRIPT_TIMEOUT_S[config])
    lines = _new_lines(out, before)
    return (lines[-1] if lines else None), ended
