"""NoChat's developer sessions: `nox` runs lint, typecheck, tests and browser tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests", "browser"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = "3.11"


def _groups(*names: str) -> list[str]:
    deps: list[str] = []
    for name in names:
        deps.extend(nox.project.dependency_groups(PYPROJECT, name))
    return deps


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install(*_groups("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the nochat package."""
    session.install("-e", ".", *_groups("typecheck"))
    session.run("mypy", "nochat")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The pytest-trio suite (unit, end-to-end on real Hypercorn, bench smoke)."""
    session.install("-e", ".", *_groups("test", "bench"))
    session.run("pytest", "--ignore=tests/browser", *session.posargs)


@nox.session(python=PYTHON)
def browser(session: nox.Session) -> None:
    """Playwright (sync API) driving Debian's Chromium against a real `nochat serve`."""
    session.install("-e", ".", *_groups("test", "browser"))
    session.run("pytest", "tests/browser", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Every benchmark scenario; writes docs/BENCHMARKS.md. `nox -s bench -- --quick`.

    The `loadgen` and `scaleout` scenarios build the outside generator and the Go peers
    with `$NOCHAT_PEERS/build.sh` (default ../shared/peers beside the checkout; Go from
    Debian) and start redis-server and PostgreSQL themselves; without them they are
    skipped with the reason in the report. CI does not run this session."""
    session.install("-e", ".[redis,postgres]", *_groups("bench"))
    session.run("python", "-m", "bench", *session.posargs)


#: Autobahn|Testsuite runs on Python 2.7 only; this set installs and runs there (found by
#: hand: newer Twisted, klein, cryptography, pyOpenSSL no longer support 2.7).
AUTOBAHN_PY27_PINS = [
    "autobahntestsuite==0.8.2",
    "autobahn==0.10.9",
    "txaio==2.1.0",
    "Twisted==20.3.0",
    "klein==20.6.0",
    "Werkzeug==1.0.1",
    "Tubes==0.2.1",
    "Jinja2==2.11.3",
    "MarkupSafe==1.1.1",
    "pyOpenSSL==21.0.0",
    "cryptography==3.3.2",
    "cffi==1.15.1",
    "pycparser==2.21",
    "service-identity==21.1.0",
    "pyasn1==0.5.1",
    "pyasn1-modules==0.3.0",
    "attrs==21.4.0",
    "Automat==22.10.0",
    "constantly==15.1.0",
    "hyperlink==21.0.0",
    "idna==2.10",
    "incremental==22.10.0",
    "ipaddress==1.0.23",
    "enum34==1.1.10",
    "six==1.17.0",
    "typing==3.10.0.0",
    "PyHamcrest==1.10.1",
    "zope.interface==5.5.2",
    "wsaccel==0.6.6",
    "ujson==2.0.3",
    "unittest2==1.1.0",
    "traceback2==1.4.0",
    "linecache2==1.0.0",
    "argparse==1.4.0",
]


def _python27() -> str | None:
    """A Python 2.7 interpreter that runs: one pyenv installed, or python2.7 on PATH (a
    pyenv shim on PATH may not run when 2.7 is not the active version)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(p) for p in sorted(pyenv.glob("2.7*/bin/python2.7"), reverse=True)]
    candidates.append(shutil.which("python2.7") or "")
    for candidate in filter(None, candidates):
        check = [candidate, "-c", "import sys; assert sys.version_info[:2] == (2, 7)"]
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            return candidate
    return None


@nox.session(python=PYTHON, default=False)
def conformance(session: nox.Session) -> None:
    """Autobahn|Testsuite (all cases) against NoChat's transport; writes docs/CONFORMANCE.md.

    Installs `autobahntestsuite` for Python 2.7 (pinned above) under this session's
    temp directory (kept between runs), then runs `python -m bench.conformance`.
    """
    python27 = _python27()
    if python27 is None:
        session.error(
            "Autobahn|Testsuite needs Python 2.7 and none was found (pyenv install 2.7.18)"
        )
    base = Path(session.create_tmp()).resolve() / "py27"
    wstest = base / "bin" / "wstest"
    env = {"PYTHONUSERBASE": str(base), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    check = [str(wstest), "--autobahnversion"]
    runs = wstest.exists() and subprocess.run(
        check, env={**os.environ, **env}, capture_output=True, check=False
    )
    if not runs or runs.returncode:
        session.run(
            python27, "-m", "pip", "install", "--user", "--ignore-installed",
            "--no-warn-script-location",
            *AUTOBAHN_PY27_PINS, env=env, external=True,
        )  # fmt: skip
    session.install("-e", ".")
    session.run(
        "python", "-m", "bench.conformance", "--wstest", str(wstest), *session.posargs, env=env
    )
