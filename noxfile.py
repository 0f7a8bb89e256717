"""NoChat's developer sessions: `nox` runs lint, typecheck, tests and browser tests."""

from __future__ import annotations

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
    """Every benchmark scenario; writes docs/BENCHMARKS.md. `nox -s bench -- --quick`."""
    session.install("-e", ".", *_groups("bench"))
    session.run("python", "-m", "bench", *session.posargs)
