"""Fixtures for the browser tests: a real `nochat serve` subprocess and Debian's Chromium.

These tests are plain synchronous pytest functions (Playwright's sync API; its async API
would need asyncio). The server runs as a child process on a free port with a temporary
data directory; `NochatServer.restart()` stops it with SIGTERM and starts it again on the
same port and data directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .ui import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
#: How long the server may take to answer /healthz after it is started.
READY_TIMEOUT_S = 30.0
READY_POLL_S = 0.05
#: How long SIGTERM may take before the server is killed.
STOP_TIMEOUT_S = 15.0
#: Default Playwright expect() timeout; reconnect scenarios pass longer ones explicitly.
EXPECT_TIMEOUT_MS = 10_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NochatServer:
    """One `python -m nochat serve` child process and the REST helpers the tests need."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.port = _free_port()
        self.data_dir = data_dir
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        #: Extra NOCHAT_* settings for the next start().
        self.env: dict[str, str] = {}
        #: Set with an https:// url: the context that trusts the server's certificate.
        self.ssl_context: ssl.SSLContext | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "NOCHAT_PASSWORD_HASHING": "fast",
            "NOCHAT_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            # Seeding goes through REST (send and room limits are tests/e2e/test_limits.py's).
            "NOCHAT_SEND_RATE_PER_S": "10000",
            "NOCHAT_SEND_BURST": "10000",
            "NOCHAT_ROOM_CREATIONS_PER_HOUR": "10000",
            "NOCHAT_MAX_ROOMS_PER_USER": "10000",
            **self.env,
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "nochat",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"nochat serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(
                    f"{self.url}/healthz", timeout=1, context=self.ssl_context
                ) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"nochat serve not ready after {READY_TIMEOUT_S}s:\n{self.log()}")
            time.sleep(READY_POLL_S)  # polling a child process, not waiting for a UI event

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"nochat serve ignored SIGTERM for {STOP_TIMEOUT_S}s:\n{self.log()}")

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    # ---- REST, for seeding and checking what the server stored ----

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ssl_context) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            raw = err.read()
            status = err.code
        return status, (json.loads(raw) if raw else None)

    def register(self, name: str, password: str = PASSWORD) -> str:
        """Create a user and return a bearer token for them."""
        status, body = self.request("POST", "/api/users", {"name": name, "password": password})
        assert status == 201, body
        status, body = self.request("POST", "/api/sessions", {"name": name, "password": password})
        assert status == 200, body
        return str(body["token"])

    def login(self, name: str, password: str = PASSWORD) -> str:
        """A new session (bearer token) for an existing user."""
        status, body = self.request("POST", "/api/sessions", {"name": name, "password": password})
        assert status == 200, body
        return str(body["token"])

    def promote(self, name: str, action: str = "promote") -> None:
        """Make `name` an admin the only way there is: `nochat admin promote` on the data dir
        (`action="demote"`: a member again)."""
        env = {**os.environ, **self.env, "NOCHAT_DATA_DIR": str(self.data_dir)}
        done = subprocess.run(
            [sys.executable, "-m", "nochat", "admin", action, name],
            cwd=REPO,
            env=env,
            capture_output=True,
            timeout=READY_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")

    def post(self, token: str, room: str, text: str, client_id: str | None = None) -> Any:
        status, body = self.request(
            "POST",
            f"/api/rooms/{room}/messages",
            {"text": text, "client_id": client_id or uuid.uuid4().hex},
            token,
        )
        assert status == 200, body
        return body

    def history(self, token: str, room: str, **params: int) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        status, body = self.request("GET", f"/api/rooms/{room}/messages?{query}", token=token)
        assert status == 200, body
        return list(body["messages"])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NochatServer]:
    srv = NochatServer(tmp_path / "data", tmp_path / "server.log")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        print(f"---- server log (tail) ----\n{srv.log()}")  # shown when a test fails


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """The one Playwright of the session: its sync API refuses a second one running."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("NOCHAT_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def new_page(browser: Any, server: NochatServer) -> Iterator[Any]:
    """`new_page(width=…, height=…)` opens the app in a fresh browser context (own cookies)."""
    contexts: list[Any] = []
    page_errors: list[str] = []

    def make(width: int = 1280, height: int = 800, *, goto: bool = True, **options: Any) -> Any:
        context = browser.new_context(
            base_url=server.url, viewport={"width": width, "height": height}, **options
        )
        contexts.append(context)
        page = context.new_page()
        name = f"page{len(contexts)}"
        page.on("pageerror", lambda exc: page_errors.append(f"{exc}"))
        page.on("console", lambda msg: print(f"[{name} console.{msg.type}] {msg.text}"))
        if goto:
            page.goto("/")
        return page

    yield make
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()
    assert not page_errors, f"uncaught errors in the page: {page_errors}"


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the main views are saved: docs/screenshots/ with NOCHAT_UPDATE_SCREENSHOTS=1
    (to refresh the README's pictures), else a temporary folder, so a test run leaves
    the checkout as it was."""
    if os.environ.get("NOCHAT_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")
