"""docs/deploy/nochat.service: `systemd-analyze verify` finds nothing, and it says what
docs/DEPLOY.md promises (restart on failure, LimitNOFILE, SIGTERM with a stop timeout
above the shutdown grace, a dedicated user, hardening)."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from nochat.settings import Settings

from .support import STEP_S, require_program

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "docs" / "deploy" / "nochat.service"
#: The documented program, replaced for the check by one that exists on this machine.
PROGRAM = "/opt/nochat/venv/bin/nochat"


def service_section() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return dict(parser["Service"])


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require_program("systemd-analyze")
    text = UNIT.read_text()
    assert text.count(PROGRAM) == 1
    copy = tmp_path / "nochat.service"
    copy.write_text(text.replace(PROGRAM, sys.executable))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        check=False,
        timeout=STEP_S * 3,
    )
    # verify exits 0 on mistakes it "ignores" (an unknown key, a bad value): read stderr.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_verify_catches_a_mistake(tmp_path: Path) -> None:
    """What the check above relies on: a misspelt key is reported on stderr."""
    analyze = require_program("systemd-analyze")
    copy = tmp_path / "nochat.service"
    text = UNIT.read_text().replace(PROGRAM, sys.executable)
    copy.write_text(text.replace("Restart=on-failure", "Restart=sometimes"))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        check=False,
        timeout=STEP_S * 3,
    )
    assert "sometimes" in result.stderr


def test_unit_says_what_deploy_md_promises() -> None:
    service = service_section()
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a bad setting does not loop
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > 2 * Settings().shutdown_grace_s
    assert int(service["LimitNOFILE"]) > Settings().max_connections
    assert service["User"] not in ("", "root")
    for option in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "RestrictSUIDSGID"):
        assert service[option] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["Environment"]  # configparser keeps the last: NOCHAT_DATA_DIR
    assert "NOCHAT_DATA_DIR=/var/lib/nochat" in UNIT.read_text()
    assert service["StateDirectory"] == "nochat"


def test_deploy_md_shows_the_checked_files() -> None:
    deploy = (REPO / "docs" / "DEPLOY.md").read_text()
    for path in ("docs/deploy/nochat.service", "docs/deploy/nginx.conf"):
        body = (REPO / path).read_text().strip()
        assert body in deploy, f"docs/DEPLOY.md does not show {path} as it is"
